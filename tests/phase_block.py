"""Run an mmfusion entry point with one function made to wait for a signal, so that a test can
signal a real process in a known phase (no guessing with sleeps):

    python tests/phase_block.py MODULE:QUALNAME[@N] MARKER -- MODULE_TO_RUN ARGS...

The N-th call (default 1) of MODULE:QUALNAME writes MARKER, then waits (at most 300 s) for a
signal, whose handler raises where the process waits, i.e. inside that phase, or for the test
to delete MARKER (after it changed the world, e.g. stopped the tracking server) to go on.
"""

from __future__ import annotations

import functools
import importlib
import runpy
import sys
import time
from pathlib import Path


def block(target: str, marker: Path) -> None:
    where, _, nth = target.partition("@")
    module_name, qualname = where.split(":")
    owner = importlib.import_module(module_name)
    *parents, name = qualname.split(".")
    for parent in parents:
        owner = getattr(owner, parent)
    original = getattr(owner, name)
    calls = [0]

    @functools.wraps(original)
    def waiting(*args, **kwargs):
        calls[0] += 1
        if calls[0] == int(nth or 1):
            marker.write_text(where)
            deadline = time.monotonic() + 300
            while marker.exists() and time.monotonic() < deadline:
                time.sleep(0.02)
        return original(*args, **kwargs)

    setattr(owner, name, waiting)


if __name__ == "__main__":
    target, marker, dashes, module, *args = sys.argv[1:]
    assert dashes == "--", __doc__
    block(target, Path(marker))
    sys.argv = [module, *args]
    runpy.run_module(module, run_name="__main__", alter_sys=True)
