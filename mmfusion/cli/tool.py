"""The two shapes of an entry point, so that every tool fails the same way: one line,
`<prog>: error: <what and why>`, exit status 1 (2 for bad arguments, as argparse does)."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable, Sequence
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

from mmfusion.errors import MmfusionError, find_user_error

T = TypeVar("T")
#: the Hydra configs, beside the package (an editable install, as README installs it)
CONFIG_DIR = str(Path(__file__).resolve().parents[2] / "conf")


def parser(prog: str, doc: str | None) -> argparse.ArgumentParser:
    """An argparse parser whose description is the module docstring's first paragraph."""
    description = (doc or "").strip().split("\n\n")[0]
    return argparse.ArgumentParser(
        prog=prog, description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )


def run_tool(
    prog: str,
    arguments: argparse.ArgumentParser,
    action: Callable[[argparse.Namespace], Any],
    argv: Sequence[str] | None = None,
) -> Any:
    """Parse `argv`, run `action(args)`; a user error becomes one line and exit status 1."""
    args = arguments.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format=f"{prog}: %(levelname)s: %(message)s")
    try:
        return action(args)
    except MmfusionError as err:
        raise SystemExit(f"{prog}: error: {err}") from None


def one_line_errors(prog: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
    """For a Hydra task function: a user error, also one that Hydra's `instantiate` wrapped, is
    one line; anything else keeps its traceback (it is a bug)."""

    def decorate(task: Callable[..., T]) -> Callable[..., T]:
        @wraps(task)
        def wrapper(*args: Any, **kwargs: Any) -> T:
            try:
                return task(*args, **kwargs)
            except Exception as err:
                user_error = find_user_error(err)
                if user_error is None:
                    raise
                raise SystemExit(f"{prog}: error: {user_error}") from None

        return wrapper

    return decorate
