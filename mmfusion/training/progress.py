"""The phases of a run that are done, so that a resumed run does only the rest."""

from __future__ import annotations

import json
import os
from pathlib import Path

import lightning.pytorch as pl

PROGRESS = "progress.json"


class Progress:
    """Which phases of a run are done, in its run dir's `progress.json`, so that `resume=...`
    does only the rest, in the same MLflow run:

    - `trained`: the fit loop ended (written by `callback()` at `on_train_end`): the best
      checkpoint, its score, the epochs run and the metrics at that point;
    - `fit`: `trainer.fit` returned (its `on_fit_end` hooks, the MLflow model, ran too);
    - `test`: testing with its evaluation artifacts and explanations; `artifacts`: the rest.

    A fresh run starts with no phase done; only a resumed one reads the file. A resumed run
    given another `trainer.max_epochs` trains on from its last checkpoint and redoes the rest.
    """

    def __init__(self, run_dir: str | Path, resuming: bool) -> None:
        self.path = Path(run_dir) / PROGRESS
        self.phases: dict[str, dict] = {}
        if resuming and self.path.is_file():
            self.phases = json.loads(self.path.read_text())

    def get(self, phase: str) -> dict | None:
        return self.phases.get(phase)

    def forget(self) -> None:
        """Every phase to do again (a resumed run given another training budget)."""
        self.phases = {}
        self.path.unlink(missing_ok=True)

    def done(self, phase: str, record: dict | None = None) -> None:
        self.phases[phase] = record or {}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{PROGRESS}.tmp")
        tmp.write_text(json.dumps(self.phases, indent=2, sort_keys=True))
        os.replace(tmp, self.path)

    def callback(self) -> pl.Callback:
        progress = self

        class RecordTrained(pl.Callback):
            def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
                if trainer.is_global_zero:
                    progress.done("trained", fit_record(trainer))

        return RecordTrained()


def fit_record(trainer: pl.Trainer) -> dict:
    """What testing and the summary need from a fit: best checkpoint, score, metrics, epochs."""
    checkpoint = trainer.checkpoint_callback
    score = checkpoint.best_model_score if checkpoint else None
    return {
        "best_model_path": (checkpoint.best_model_path if checkpoint else "") or "",
        "best_model_score": None if score is None else float(score),
        "epochs": trainer.current_epoch,
        "max_epochs": trainer.max_epochs,
        "logging_step": trainer.fit_loop.epoch_loop._batches_that_stepped,
        "metrics": {k: float(v) for k, v in trainer.callback_metrics.items()},
    }


def continue_logging_at(trainer: pl.Trainer, record: dict) -> None:
    """A resumed run that skips fit tests with the fit's logging step, as the run would have:
    Lightning logs a metric at the count of optimizer steps taken, kept in this loop attribute
    (there is no public setter)."""
    trainer.fit_loop.epoch_loop._batches_that_stepped = record.get("logging_step", 0)
