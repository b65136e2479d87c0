"""One command-line style: every tool is a console script of pyproject.toml, installed with the
package, answers `--help` within seconds, and keeps its `python -m mmfusion...` form."""

from __future__ import annotations

import ast
import importlib.metadata
import os
import resource
import subprocess
import sys
import tomllib

import pytest

from conftest import REPO
from mmfusion.cli.tool import hydra_app

SCRIPTS: dict[str, str] = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
HELP_SECONDS = 10
#: `python -m <module>` forms that the README and users type: the module's shim calls this main
SHIMS = {
    "mmfusion.__main__": "mmfusion.cli.train",
    **{f"mmfusion.{tool}": f"mmfusion.cli.{tool}" for tool in ("check", "compare", "evaluate")},
    **{f"mmfusion.{tool}": f"mmfusion.cli.{tool}" for tool in ("localisation", "predict")},
    "mmfusion.robustness": "mmfusion.cli.robustness",
    "mmfusion.app": "mmfusion.cli.app",
}


def test_every_cli_module_with_a_main_is_a_console_script():
    tools = {
        p.stem
        for p in (REPO / "mmfusion" / "cli").glob("*.py")
        if "\ndef main(" in p.read_text()  # entry points; tool, options, preflight serve them
    }
    assert {target.split(":")[0] for target in SCRIPTS.values()} == {
        f"mmfusion.cli.{tool}" for tool in tools
    }
    assert SCRIPTS["mmfusion"] == "mmfusion.cli.train:main"


def test_console_scripts_are_installed():
    installed = {
        e.name: e.value
        for e in importlib.metadata.entry_points(group="console_scripts")
        if e.dist is not None and e.dist.name == "mmfusion"
    }
    assert installed == SCRIPTS, "reinstall the package: pip install -e '.[dev]'"


@pytest.mark.parametrize("shim", sorted(SHIMS))
def test_python_m_shims_call_the_console_scripts_main(shim):
    path = REPO / (shim.replace(".", "/") + ".py")
    imports = [n for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.ImportFrom)]
    assert [(n.module, [a.name for a in n.names]) for n in imports] == [(SHIMS[shim], ["main"])]


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_every_tool_answers_help_within_seconds_without_loading_torch(name):
    """--help is fast because the entry points import torch, Lightning and MLflow only when they
    run a job. Timed in CPU seconds (user + system) of the tool's process: on a shared machine
    the wall time mostly measures the other jobs (unloaded, wall ~ CPU + 0.3 s)."""
    module, function = SCRIPTS[name].split(":")
    # what pip's console-script wrapper runs, here from this checkout, + the heavy modules loaded
    wrapper = (
        "import atexit, sys\n"
        "heavy = lambda: sorted(m for m in ('torch', 'lightning', 'mlflow') if m in sys.modules)\n"
        "atexit.register(lambda: print('heavy:', heavy(), file=sys.stderr))\n"
        f"from {module} import {function}\n"
        f"sys.argv[0] = {name!r}\n"
        f"sys.exit({function}())\n"
    )
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = subprocess.run(
        [sys.executable, "-c", wrapper, "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    seconds = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    assert result.returncode == 0, result.stderr[-2000:]
    assert "usage" in result.stdout.lower() or "powered by hydra" in result.stdout.lower()
    assert result.stderr.strip().splitlines()[-1] == "heavy: []"
    assert seconds < HELP_SECONDS, f"{name} --help took {seconds:.1f} CPU-s"


def test_a_hydra_app_without_its_config_says_so_in_one_line():
    app = hydra_app("mmfusion-x", "no_such_config")(lambda cfg: None)
    with pytest.raises(SystemExit, match=r"^mmfusion-x: error: no no_such_config\.yaml in .*pip "):
        app()
