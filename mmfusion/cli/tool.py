"""The two shapes of an entry point, so that every tool fails the same way: one line,
`<prog>: error: <what and why>`, exit status 1 (2 for bad arguments, as argparse does)."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable, Sequence
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import hydra

from mmfusion.errors import ConfigError, MmfusionError, find_user_error
from mmfusion.training.resolvers import register as register_resolvers

T = TypeVar("T")
#: the Hydra configs, beside the package (an editable install, as README installs it)
CONFIG_DIR = str(Path(__file__).resolve().parents[2] / "conf")
# the configs' `${mmfusion...:}` interpolations, registered before any entry point reads them
register_resolvers()


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
        raise error_lines(prog, err) from None
    except OSError as err:
        if not is_environment_error(err):
            raise
        raise error_lines(prog, err) from None


#: errno names of failures a user fixes outside mmfusion (disk full, read-only, permissions)
ENVIRONMENT_ERRNOS = ("ENOSPC", "EDQUOT", "EFBIG", "EROFS", "EACCES", "EPERM")


def is_environment_error(err: BaseException) -> bool:
    """A write that failed because of the machine (full disk, read-only folder), not a bug."""
    import errno

    return isinstance(err, OSError) and errno.errorcode.get(err.errno or -1) in ENVIRONMENT_ERRNOS


def user_error(err: BaseException) -> BaseException | None:
    """What a user can act on behind `err`: an MmfusionError (also one Hydra's `instantiate`
    wrapped), an option a target does not take, or a full / read-only disk; else None (a bug)."""
    found = find_user_error(err)
    if found is not None:
        return found
    cause = err
    while cause is not None:
        if is_environment_error(cause):
            return cause
        if type(cause).__name__ == "InstantiationException" and isinstance(
            cause.__cause__, TypeError
        ):
            reason = str(cause.__cause__)
            if "argument" in reason:  # unexpected keyword / missing required argument
                where = str(cause).rsplit("full_key: ", 1)[-1] if "full_key" in str(cause) else ""
                return ConfigError(f"{where or 'a config node'}: {reason}")
        cause = cause.__cause__ or cause.__context__
    return None


def error_lines(prog: str, err: BaseException) -> SystemExit:
    """`<prog>: error: ...`, one line per line of the message (several options: several lines)."""
    text = str(err)
    if isinstance(err, OSError) and err.filename:
        text = f"{err.filename}: {err.strerror}"
    return SystemExit("\n".join(f"{prog}: error: {line}" for line in text.splitlines()))


def one_line_errors(prog: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
    """For a Hydra task function: a user error (`user_error`) is one line per problem; anything
    else keeps its traceback (it is a bug)."""

    def decorate(task: Callable[..., T]) -> Callable[..., T]:
        @wraps(task)
        def wrapper(*args: Any, **kwargs: Any) -> T:
            try:
                return task(*args, **kwargs)
            except Exception as err:
                found = user_error(err)
                if found is None:
                    raise
                raise error_lines(prog, found) from None

        return wrapper

    return decorate


def hydra_app(prog: str, config_name: str) -> Callable[[Callable[..., T]], Callable[[], T]]:
    """A configured job: `task(cfg)` as a Hydra app over `CONFIG_DIR/<config_name>.yaml`, whose
    user errors are one line (`one_line_errors`), as is a missing config folder."""

    def decorate(task: Callable[..., T]) -> Callable[[], T]:
        app = hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name=config_name)(
            one_line_errors(prog)(task)
        )

        @wraps(task)
        def main() -> T:
            if not (Path(CONFIG_DIR) / f"{config_name}.yaml").is_file():
                raise SystemExit(
                    f"{prog}: error: no {config_name}.yaml in {CONFIG_DIR}: the configs live in "
                    "the clone, so install mmfusion from it with `pip install -e .`"
                )
            return app()

        return main

    return decorate
