"""Honest packaging: every third-party package the code imports (or a config names in
`_target_`) is declared in pyproject.toml, and the declared Python floor is the one the tools
are set to."""

from __future__ import annotations

import ast
import functools
import importlib.metadata
import importlib.util
import re
import sys
import tomllib

from packaging.version import Version

from conftest import CONF, REPO

PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
FIRST_PARTY = ("mmfusion", "hydra_plugins")


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def declared() -> set[str]:
    project = PYPROJECT["project"]
    requirements = project["dependencies"] + [
        r for extra in project.get("optional-dependencies", {}).values() for r in extra
    ]
    return {normalise(re.split(r"[<>=!~;\[ ]", r, maxsplit=1)[0]) for r in requirements}


def imported_modules() -> dict[str, str]:
    """Dotted module name -> the first file importing it, over the packages' code (also imports
    inside functions) and the configs' `_target_`s."""
    found: dict[str, str] = {}
    for path in sorted(p for package in FIRST_PARTY for p in (REPO / package).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name, str(path.relative_to(REPO)))
    for path in sorted(CONF.rglob("*.yaml")):
        for target in re.findall(r"_target_:\s*([\w.]+)", path.read_text()):
            found.setdefault(target.rsplit(".", 1)[0], str(path.relative_to(REPO)))
    return found


@functools.cache
def providers() -> dict[str, list[str]]:
    return importlib.metadata.packages_distributions()


@functools.cache
def distributions_of(module: str) -> frozenset[str]:
    """The installed distributions that provide `module`; of a namespace package (such as
    `hydra_plugins`, which many distributions share) the one that provides its sub-package."""
    top = module.split(".")[0]
    spec = importlib.util.find_spec(top)
    if spec is None or spec.origin is not None or "." not in module:
        return frozenset(providers().get(top, []))
    path = "/".join(module.split(".")[:2])
    return frozenset(
        dist
        for dist in providers().get(top, [])
        if any(str(f).startswith(path + "/") for f in importlib.metadata.files(dist) or [])
    )


def test_every_imported_third_party_package_is_declared():
    third_party = {
        module: where
        for module, where in imported_modules().items()
        if module.split(".")[0] not in (*sys.stdlib_module_names, *FIRST_PARTY, "__future__")
        or module.startswith("hydra_plugins.hydra_")  # a launcher plugin: another distribution
    }
    assert "joblib" in third_party and "torch" in third_party  # the scan sees the code
    undeclared = {
        module: (where, sorted(distributions_of(module)))
        for module, where in third_party.items()
        if not {normalise(d) for d in distributions_of(module)} & declared()
    }
    assert undeclared == {}, "declare these in pyproject.toml (module: (file, distributions))"


def test_python_floor_matches_the_tools_target():
    floor = re.fullmatch(r">=\s*3\.(\d+)", PYPROJECT["project"]["requires-python"])
    assert floor, "requires-python is a plain floor"
    assert PYPROJECT["tool"]["ruff"]["target-version"] == f"py3{floor.group(1)}"
    assert sys.version_info >= (3, int(floor.group(1)))


#: an API the code calls -> the floor it needs (raise the floor, or stop calling it)
NEEDS = [
    (r"hashlib\.file_digest\(", "python", "3.11"),
    (r"np\.bitwise_count\(", "numpy", "2.0"),
    (r"bootstrap\((?s:[^)]*)\brng=", "scipy", "1.15"),
]


def floor_of(package: str) -> Version:
    if package == "python":
        return Version(PYPROJECT["project"]["requires-python"].removeprefix(">="))
    for requirement in PYPROJECT["project"]["dependencies"]:
        if normalise(re.split(r"[<>=!~ ]", requirement, maxsplit=1)[0]) == package:
            return Version(re.search(r">=\s*([\w.]+)", requirement).group(1))
    raise AssertionError(f"{package} is not declared")


def test_floors_cover_the_newer_apis_the_code_calls():
    code = "\n".join(p.read_text() for p in (REPO / "mmfusion").rglob("*.py"))
    used = [
        (pattern, package, need) for pattern, package, need in NEEDS if re.search(pattern, code)
    ]
    assert used, "the scan sees the code"
    assert [
        (p, package, str(floor_of(package)))
        for p, package, need in used
        if floor_of(package) < Version(need)
    ] == []
