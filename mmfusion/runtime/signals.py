"""SIGTERM and SIGINT in any phase of a job (fit, validate, test, explain, artifact upload, the
comparison at a multirun's end): the job stops at once, its MLflow run is marked KILLED by
`tracking.loggers.final_status`, and the process exits 143 (SIGTERM) or 130 (SIGINT).

The signal becomes `Interrupted`, a SystemExit raised where the process is, so every phase
takes the same path as an exception (Lightning's `on_exception` hooks save
`checkpoints/interrupted.ckpt`). A `deferred()` section is never cut in two: a signal received
inside one is raised when it ends (checkpoint writes use it). Later signals while the job is
stopping are ignored, so that its KILLED status and checkpoint are written.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Interrupted(SystemExit):
    """A job stopped by a signal; exits with status 128 + the signal's number."""

    def __init__(self, signum: int) -> None:
        super().__init__(128 + signum)
        self.signum = signum

    def __str__(self) -> str:
        return f"stopped by {signal.Signals(self.signum).name}"


class _State:
    received: int | None = None  # the first signal received
    raised = False  # Interrupted was raised for it
    deferring = 0  # depth of nested deferred() sections


_state = _State()


def received() -> int | None:
    """The signal that stopped (or is stopping) this process, if any."""
    return _state.received


def _stop(signum: int) -> None:
    _state.raised = True
    raise Interrupted(signum)


def _handler(signum: int, frame: Any) -> None:
    if _state.raised:
        return
    _state.received = _state.received or signum
    if not _state.deferring:
        _stop(_state.received)


@contextmanager
def deferred() -> Iterator[None]:
    """A section a signal must not cut in two: a signal received inside is raised at its end."""
    _state.deferring += 1
    try:
        yield
    finally:
        _state.deferring -= 1
    if not _state.deferring and _state.received and not _state.raised:
        _stop(_state.received)


def install() -> dict[int, Any] | None:
    """SIGTERM / SIGINT raise `Interrupted` from now on; the previous handlers (None when this
    is not the main thread, where signals cannot be handled)."""
    try:
        previous = {signum: signal.signal(signum, _handler) for signum in SIGNALS}
    except ValueError:
        return None
    _state.received, _state.raised, _state.deferring = None, False, 0
    return previous


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """SIGTERM / SIGINT raise `Interrupted` for the duration (main thread only)."""
    previous = install()
    if previous is None:
        yield
        return
    try:
        yield
    except SystemExit as stop:  # Lightning's SIGTERMException, when it noticed the signal first
        if _state.received and not isinstance(stop, Interrupted):
            raise Interrupted(_state.received) from None
        raise
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
