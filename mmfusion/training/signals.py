"""SIGTERM handled like Ctrl-C, so that a killed job takes the same, tested path."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class Terminated(KeyboardInterrupt):
    """SIGTERM outside Lightning's loops, raised like Ctrl-C so that both take the same path."""


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM stops the run like Ctrl-C and exits with status 143.

    While a Trainer runs, Lightning's own handler is installed and calls this one after it; then
    nothing is raised here: Lightning stops at the next batch boundary (SIGTERMException), which
    never interrupts a checkpoint or tracking-store write halfway.
    """
    from lightning.pytorch.utilities.exceptions import SIGTERMException

    def handler(signum: int, frame: Any) -> None:
        if signal.getsignal(signal.SIGTERM) is handler:  # no Trainer running
            raise Terminated(f"received signal {signum}")

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    except (Terminated, SIGTERMException):
        raise SystemExit(128 + signal.SIGTERM) from None
    finally:
        signal.signal(signal.SIGTERM, previous)
