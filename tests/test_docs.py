"""Docs that cannot drift: every mmfusion command in a code block of README.md or docs/*.md is
checked against the code, so a renamed option, group or tool fails here, not for the reader.

A command is a line (with its `\\` continuations) of a shell or text code block that runs
`python -m mmfusion...` or a console script of `[project.scripts]`, also after `&&`, `$ ` or
environment assignments. Configured jobs (Hydra apps) are composed in-process with the command's
overrides, which is what `--cfg job` prints: every key, group option and override must exist.
A sweep (`-m`, or an experiment in multirun mode) is composed once per swept value. The
composed config is resolved (except where the job completes it at run time), and every
`_target_` in it must import. Path tools (argparse) parse the command with their own parser.
Placeholders such as `/path/to/data` pass: nothing here reads a path. Python blocks that start
with `# <name>.py` are written to a folder on the import path first, so a doc's own example
module (a fusion, say) is what its `_target_` must reach.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import itertools
import re
import shlex
import sys
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.utils import get_object
from omegaconf import DictConfig, ListConfig, OmegaConf, open_dict

from conftest import CONF, REPO

DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
SHELL_BLOCKS = {"", "bash", "sh", "shell", "console", "text"}
#: Hydra apps whose config the job itself completes at run time (evaluate: modality and data
#: come from the checkpoint), so their composed config is checked but not resolved
COMPLETED_AT_RUN_TIME = {"evaluate"}
#: Hydra's own flags: those taking a value, and switches
HYDRA_FLAGS_WITH_VALUE = {"--cfg", "-c", "--package", "-p", "--info", "-i"}
HYDRA_SWITCHES = {"--help", "-h", "--hydra-help", "--resolve", "--multirun", "-m"}
SEPARATORS = {"&&", "||", ";", "|", "&"}


@dataclass(frozen=True)
class Command:
    source: str  # file:line
    argv: tuple[str, ...]  # from the module or console script on

    def __str__(self) -> str:
        return f"{self.source}: {shlex.join(self.argv)}"


def console_scripts() -> dict[str, str]:
    """{script: module} from pyproject's [project.scripts] (none: an empty dict)."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    return {name: target.split(":")[0] for name, target in project.get("scripts", {}).items()}


def code_blocks(path: Path) -> Iterator[tuple[str, int, list[str]]]:
    """(info string, first line number, lines) of every fenced code block."""
    info, start, lines = None, 0, []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        fence = re.match(r"^\s*```(\S*)", line)
        if fence and info is None:
            info, start, lines = fence.group(1).lower(), number + 1, []
        elif fence:
            yield info, start, lines
            info = None
        elif info is not None:
            lines.append(line)


def logical_lines(lines: list[str], start: int) -> Iterator[tuple[int, str]]:
    """Lines with their `\\` continuations joined, and the number of their first line."""
    buffer, first = "", start
    for number, line in enumerate(lines, start):
        if not buffer:
            first = number
        if line.rstrip().endswith("\\"):
            buffer += line.rstrip()[:-1] + " "
            continue
        yield first, buffer + line
        buffer = ""


def is_mmfusion(argv: list[str], scripts: dict[str, str]) -> bool:
    if argv[:2] == ["python", "-m"] and len(argv) > 2:
        return argv[2] == "mmfusion" or argv[2].startswith("mmfusion.")
    return bool(argv) and argv[0] in scripts


def commands(paths: list[Path] = DOCS) -> list[Command]:
    """Every mmfusion command of the shell / text code blocks of `paths`."""
    scripts = console_scripts()
    found = []
    for path in paths:
        for info, start, lines in code_blocks(path):
            if info not in SHELL_BLOCKS:
                continue
            for number, line in logical_lines(lines, start):
                line = re.sub(r"^\s*\$\s+", "", line)
                try:
                    tokens = shlex.split(line, comments=True)
                except ValueError:  # output, not a command (an unbalanced quote)
                    continue
                segments = [
                    list(group)
                    for is_separator, group in itertools.groupby(tokens, SEPARATORS.__contains__)
                    if not is_separator
                ]
                for segment in segments:
                    while segment and re.match(r"^[A-Za-z_]\w*=", segment[0]):
                        segment = segment[1:]  # VAR=value before the command
                    if is_mmfusion(segment, scripts):
                        argv = segment[2:] if segment[0] == "python" else segment
                        where = path.relative_to(REPO) if path.is_relative_to(REPO) else path.name
                        found.append(Command(f"{where}:{number}", tuple(argv)))
    return found


def entry_module(name: str) -> str:
    """The `mmfusion.cli` module behind `python -m <name>` or a console script."""
    module = console_scripts().get(name, name)
    if module == "mmfusion":
        return "mmfusion.cli.train"
    if module.startswith("mmfusion.cli."):
        return module
    candidate = "mmfusion.cli." + module.removeprefix("mmfusion.")
    try:
        found = importlib.util.find_spec(candidate) is not None
    except ModuleNotFoundError:  # its parent package does not exist either
        found = False
    if not found:
        raise AssertionError(f"{name}: no such mmfusion tool")
    return candidate


def check_argparse(parser: argparse.ArgumentParser, args: list[str]) -> None:
    try:
        parser.parse_args(args)
    except SystemExit as exit:
        if exit.code not in (0, None):  # 0: --help
            raise AssertionError(f"the tool's parser refuses {args}") from None


def split_hydra_flags(args: list[str]) -> tuple[list[str], bool, str | None]:
    """(overrides, multirun, config name) of a Hydra app's command line."""
    overrides, multirun, config_name, rest = [], False, None, iter(args)
    for arg in rest:
        if arg in ("-m", "--multirun"):
            multirun = True
        elif arg in ("--config-name", "-cn"):
            config_name = next(rest)
        elif arg in HYDRA_FLAGS_WITH_VALUE:
            next(rest, None)
        elif arg in HYDRA_SWITCHES:
            continue
        elif arg.startswith("-"):
            raise AssertionError(f"{arg}: not a Hydra flag")
        else:
            overrides.append(arg)
    return overrides, multirun, config_name


def job_variants(overrides: list[str]) -> tuple[list[list[str]], bool]:
    """The overrides of the jobs a sweep would launch, each swept value once, the other sweeps at
    their first value (not the whole product: every value is composed, fast); and whether the
    command sweeps at all."""
    parsed = OverridesParser.create().parse_overrides(overrides)
    values = [
        [f"{o.get_key_element()}={v}" for v in o.sweep_string_iterator()]
        if o.is_sweep_override()
        else [overrides[i]]
        for i, o in enumerate(parsed)
    ]
    first = [v[0] for v in values]
    variants = [first]
    for i, choices in enumerate(values):
        variants += [[*first[:i], choice, *first[i + 1 :]] for choice in choices[1:]]
    return variants, any(o.is_sweep_override() for o in parsed)


def targets(node, where: str = "") -> Iterator[tuple[str, str]]:
    """(config path, `_target_`) of every node that has one."""
    if isinstance(node, DictConfig):
        for key in node:
            value = node._get_node(key)
            if key == "_target_" and not OmegaConf.is_interpolation(node, key):
                yield where, str(value)
            elif isinstance(value, DictConfig | ListConfig):
                yield from targets(value, f"{where}.{key}".lstrip("."))
    elif isinstance(node, ListConfig) and not node._is_none():  # an optional list left unset
        for i, value in enumerate(node):
            yield from targets(value, f"{where}[{i}]")


def check_hydra(config_name: str, args: list[str], tmp_path: Path) -> None:
    overrides, multirun, other_name = split_hydra_flags(args)
    config_name = other_name or config_name
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        variants, sweeps = job_variants(overrides)
        for variant in variants:
            cfg = compose(config_name, overrides=variant, return_hydra_config=True)
            if sweeps and not multirun and cfg.hydra.mode != "MULTIRUN":
                raise AssertionError("Ambiguous value: a sweep without -m (Hydra refuses it)")
            with open_dict(cfg):
                cfg.hydra.runtime.output_dir = str(tmp_path / "run")
                cfg.hydra.runtime.cwd = str(tmp_path)
                cfg.hydra.job.num = 0
            HydraConfig.instance().set_config(cfg)
            for where, target in targets(cfg):
                try:
                    get_object(target)
                except Exception as err:
                    raise AssertionError(f"{where}._target_={target}: {err}") from None
            if config_name not in COMPLETED_AT_RUN_TIME:
                job = OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"])
                OmegaConf.to_container(job, resolve=True)


def check(command: Command, tmp_path: Path) -> None:
    """Raise (AssertionError, or Hydra's error) when the code would refuse the command."""
    module = importlib.import_module(entry_module(command.argv[0]))
    args = list(command.argv[1:])
    if hasattr(module, "arguments"):
        check_argparse(module.arguments(), args)
        return
    config_name = module.__name__.rsplit(".", 1)[1]
    if not (CONF / f"{config_name}.yaml").is_file():
        raise AssertionError(f"{module.__name__}: neither an argparse tool nor a Hydra app")
    check_hydra(config_name, args, tmp_path)


@pytest.fixture(scope="module")
def doc_modules(tmp_path_factory) -> Path:
    """The docs' own example modules (python blocks starting `# <name>.py`), importable."""
    folder = tmp_path_factory.mktemp("doc_modules")
    for path in DOCS:
        for info, _, lines in code_blocks(path):
            name = re.fullmatch(r"#\s*(\w+\.py)\s*", lines[0]) if lines else None
            if info == "python" and name:
                (folder / name.group(1)).write_text("\n".join(lines) + "\n")
    sys.path.insert(0, str(folder))
    yield folder
    sys.path.remove(str(folder))
    GlobalHydra.instance().clear()


DOC_COMMANDS = commands()


@pytest.mark.parametrize("command", DOC_COMMANDS, ids=lambda c: c.source)
def test_every_documented_command_fits_the_code(command, doc_modules, tmp_path):
    try:
        check(command, tmp_path)
    except Exception as err:
        pytest.fail(f"{command}\n  -> {type(err).__name__}: {err}", pytrace=False)


def test_every_relative_link_of_the_docs_reaches_a_file():
    """A page moved or never written breaks the build, not the reader's click."""
    broken = [
        f"{path.relative_to(REPO)}: {target}"
        for path in DOCS
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", path.read_text())
        if "://" not in target and not (path.parent / target).exists()
    ]
    assert broken == []


def test_the_readme_links_every_docs_page():
    readme = (REPO / "README.md").read_text()
    assert [p.name for p in DOCS[1:] if f"(docs/{p.name})" not in readme] == []


def test_the_docs_hold_commands_of_every_kind():
    argvs = [c.argv for c in DOC_COMMANDS]
    assert ("mmfusion", "fusion=early", "backbone=resnet18") in argvs  # the README's main job
    assert len(DOC_COMMANDS) >= 50
    tools = {entry_module(argv[0]) for argv in argvs}
    assert {"mmfusion.cli.train", "mmfusion.cli.predict", "mmfusion.cli.compare"} <= tools
    assert any("-m" in argv for argv in argvs)


@pytest.mark.parametrize(
    ("line", "error"),
    [
        ("python -m mmfusion data.image_size=64", "Could not override 'data.image_size'"),
        ("python -m mmfusion fusion=concat", "Could not find 'fusion/concat'"),
        ("python -m mmfusion fusion=early,late", "Ambiguous value"),
        ("python -m mmfusion -m seed=1,2 fusion=early,concat", "Could not find 'fusion/concat'"),
        ("python -m mmfusion fusion.fusion._target_=mmfusion.nowhere.Fusion", "nowhere"),
        ("python -m mmfusion.compare --multirun-dir x", "not a Hydra flag"),
        ("python -m mmfusion.predict ckpt_path=a.ckpt ct=a.png", "refuses"),
        ("python -m mmfusion.predict a.ckpt --ct a.png --mri b.png", "refuses"),
        ("python -m mmfusion.explain.localisation a.ckpt", "no such mmfusion tool"),
    ],
)
def test_a_command_that_drifted_from_the_code_is_caught(line, error, tmp_path):
    markdown = tmp_path / "page.md"
    markdown.write_text(f"```bash\n{line}  # a comment\n```\n")
    (command,) = commands([markdown])
    with pytest.raises(Exception, match=re.escape(error)):
        check(command, tmp_path)


def test_commands_are_found_after_prompts_chains_continuations_and_variables(tmp_path):
    markdown = tmp_path / "page.md"
    markdown.write_text(
        "```bash\n"
        "pip install -e . && python -m mmfusion fusion=late \\\n  seed=2\n"
        "$ PYTHONPATH=. python -m mmfusion.check data=folder data.root=x   # exit 1\n"
        "mlflow ui --port 5000\n"
        "```\n"
        "```python\npython -m mmfusion not=shell\n```\n"
    )
    found = [(c.source.rsplit(":", 1)[1], c.argv) for c in commands([markdown])]
    assert found == [
        ("2", ("mmfusion", "fusion=late", "seed=2")),
        ("4", ("mmfusion.check", "data=folder", "data.root=x")),
    ]
