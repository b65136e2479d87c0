"""Checkpoint files that survive a kill: atomic writes, safe reads, and the random state.

- Writes go to a temporary file in the same folder, are fsynced and then renamed over the
  target, so `last.ckpt` is always either the previous or the new complete checkpoint (a power
  cut or SIGKILL mid-write cannot leave a truncated file behind).
- `callbacks.model_checkpoint` keeps `last.ckpt` as a link to the epoch's best file when that
  was just written (Lightning's `save_last: link`, one write per epoch instead of two), and swaps
  the link in one rename as well.
- Reads use `torch.load(weights_only=True)` (mmfusion.models.checkpoint.read_checkpoint),
  so resuming from a checkpoint never runs code from it.
- The global random state is saved with every checkpoint and restored on resume, so a resumed
  run shuffles, augments and drops modalities exactly as the uninterrupted run would have.
"""

from __future__ import annotations

import logging
import os
import random
import tempfile
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.callbacks import ModelCheckpoint as LightningModelCheckpoint
from lightning.pytorch.plugins.io import TorchCheckpointIO

from mmfusion.models.checkpoint import read_checkpoint
from mmfusion.runtime.signals import deferred

log = logging.getLogger(__name__)
INTERRUPTED = "interrupted.ckpt"


class SafeCheckpointIO(TorchCheckpointIO):
    """Lightning checkpoint I/O with atomic local writes and weights-only reads."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any = None
    ) -> None:
        with deferred():  # a signal waits for the file to be whole
            self._save(checkpoint, Path(path))

    def _save(self, checkpoint: dict[str, Any], path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(handle, "wb") as file:
                torch.save(checkpoint, file)
                file.flush()
                os.fsync(file.fileno())
            os.replace(tmp, path)
        except BaseException as err:
            Path(tmp).unlink(missing_ok=True)
            # a full or read-only disk (torch.save reports it as a RuntimeError raised while
            # handling it): name the checkpoint
            failed = err if isinstance(err, OSError) else err.__context__
            if isinstance(failed, OSError):
                raise OSError(failed.errno, failed.strerror, str(path)) from err
            raise

    def load_checkpoint(
        self, path: str | Path, map_location: Any = None, weights_only: bool | None = None
    ) -> dict[str, Any]:
        return read_checkpoint(path)


class ModelCheckpoint(LightningModelCheckpoint):
    """Lightning's, with the `save_last: link` symlink replaced atomically (never removed first)."""

    @staticmethod
    def _link_checkpoint(trainer: pl.Trainer, filepath: str, linkpath: str) -> None:
        if trainer.is_global_zero and os.path.abspath(filepath) != os.path.abspath(linkpath):
            tmp = f"{linkpath}.link.tmp"
            Path(tmp).unlink(missing_ok=True)
            os.symlink(os.path.relpath(filepath, os.path.dirname(linkpath)), tmp)
            os.replace(tmp, linkpath)
        trainer.strategy.barrier()


def random_state() -> dict[str, Any]:
    """torch / numpy / Python RNG states in types a weights-only load accepts."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {
            "kind": kind,
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "gauss": float(gauss),
        },
        "python": random.getstate(),
    }


def set_random_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    n = state["numpy"]
    keys = n["keys"].numpy().astype(np.uint32)
    np.random.set_state((n["kind"], keys, n["pos"], n["has_gauss"], n["gauss"]))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))


class CrashSafety(Callback):
    """Random state in every checkpoint; on Ctrl-C / SIGTERM, a checkpoint of the moment.

    The interrupted checkpoint (`checkpoints/interrupted.ckpt`) keeps the weights reached
    mid-epoch; resuming uses `last.ckpt`, written at the end of the last completed epoch, because
    only an epoch boundary can be resumed exactly.
    """

    def state_dict(self) -> dict[str, Any]:
        return {"random_state": random_state()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if "random_state" in state_dict:
            set_random_state(state_dict["random_state"])

    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        if not isinstance(exception, KeyboardInterrupt | SystemExit):
            return
        checkpoint = trainer.checkpoint_callback
        folder = Path(checkpoint.dirpath) if checkpoint and checkpoint.dirpath else None
        if folder is None or not trainer.is_global_zero:
            return
        try:
            trainer.save_checkpoint(folder / INTERRUPTED)
            log.warning("interrupted: saved %s", folder / INTERRUPTED)
        except Exception as err:  # the run is going down anyway; say why there is no file
            log.error("interrupted: could not save %s: %s", folder / INTERRUPTED, err)
