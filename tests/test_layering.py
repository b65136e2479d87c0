"""The package's layering holds: the import-linter contracts in pyproject.toml are kept, and no
module imports another module's private (`_x`) name."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO

PYPROJECT = REPO / "pyproject.toml"
FIRST_PARTY = ("mmfusion", "hydra_plugins")


@pytest.mark.slow
def test_import_linter_contracts_are_kept():
    # its own process: lint_imports reconfigures logging, which disables every other logger
    lint_imports = Path(sys.executable).parent / "lint-imports"
    result = subprocess.run(
        [lint_imports, PYPROJECT, "--no-cache"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout


def private_imports(path: Path, root: Path = REPO) -> list[str]:
    """`from mmfusion.x import _y` lines (any depth, also inside functions) of one file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if not isinstance(node, ast.ImportFrom):
            continue
        first_party = node.level > 0 or (node.module or "").split(".")[0] in FIRST_PARTY
        for alias in node.names:
            private = alias.name.startswith("_") and not alias.name.startswith("__")
            if first_party and private:
                found.append(f"{path.relative_to(root)}:{node.lineno}: {alias.name}")
    return found


def test_no_private_name_is_imported_across_modules():
    files = [p for package in FIRST_PARTY for p in sorted((REPO / package).rglob("*.py"))]
    assert len(files) > 50  # the walk found the package
    assert [line for path in files for line in private_imports(path)] == []


def test_the_private_import_check_catches_one(tmp_path):
    module = tmp_path / "module.py"
    module.write_text(
        "from mmfusion.data.datamodule import _helper\n"
        "from mmfusion import __version__\n"
        "def f():\n    from .sibling import _other\n"
    )
    assert private_imports(module, tmp_path) == ["module.py:1: _helper", "module.py:4: _other"]
