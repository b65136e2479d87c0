"""Lightning's MLflow logger as mmfusion uses it: nested runs, artifacts, resumed runs, and a
final status that is never left RUNNING."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.loggers import Logger, MLFlowLogger
from omegaconf import DictConfig

from mmfusion.tracking.runs import PARENT_TAG

log = logging.getLogger(__name__)
PARENT_RUN_ENV = "MMFUSION_PARENT_RUN_ID"


def mlflow_loggers(loggers: Iterable[Logger]) -> list[MLFlowLogger]:
    return [lg for lg in loggers if isinstance(lg, MLFlowLogger)]


def log_artifact(loggers: Iterable[Logger], path: Path, artifact_path: str | None = None) -> None:
    """Upload a file or folder to every MLflow run among the loggers (rank 0 only)."""
    for logger in mlflow_loggers(loggers):
        if path.is_dir():
            logger.experiment.log_artifacts(logger.run_id, str(path), artifact_path)
        else:
            logger.experiment.log_artifact(logger.run_id, str(path), artifact_path)


class NestedMLFlowLogger(MLFlowLogger):
    """Lightning's MLflow logger whose run is a child of `parent_run_id` (a multirun's run).

    The id reaches a job through `logger.mlflow.parent_run_id`, which interpolates the
    environment variable that `MultirunParentRun` sets for the duration of a multirun.
    """

    def __init__(self, *args: Any, parent_run_id: str | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if parent_run_id:
            self.tags = {**(self.tags or {}), PARENT_TAG: parent_run_id}


class LogDataSizes(pl.Callback):
    """Lightning callback: tag each MLflow run with its split sizes (`data.n_train`, ...), so
    that a report can say what its numbers were measured on."""

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        datasets = getattr(trainer.datamodule, "datasets", {}) or {}
        for logger in mlflow_loggers(trainer.loggers):
            for split, dataset in datasets.items():
                logger.experiment.set_tag(logger.run_id, f"data.n_{split}", str(len(dataset)))


RUN_FILE = "mlflow_run.json"


def build_loggers(
    logger_cfgs: DictConfig, output_dir: Path, resuming: bool
) -> tuple[list[Logger], bool]:
    """The loggers, and whether a resumed run's MLflow logger reopened the run it logged to."""
    from hydra.utils import instantiate

    saved = _saved_runs(output_dir) if resuming else {}
    loggers, reopened = [], False
    for cfg in logger_cfgs.values():
        if not cfg:
            continue
        run_id = saved.get(str(cfg.get("tracking_uri"))) if _is_mlflow(cfg) else None
        loggers.append(instantiate(cfg, run_id=run_id) if run_id else instantiate(cfg))
        if run_id:
            loggers[-1].experiment.update_run(run_id, status="RUNNING")
            log.info("resuming MLflow run %s", run_id)
            reopened = True
    return loggers, reopened


def remember_runs(loggers: Iterable[Logger], output_dir: Path) -> None:
    """Write the MLflow run ids to the run dir, where a resumed launch finds them."""
    runs = {lg._tracking_uri: lg.run_id for lg in mlflow_loggers(loggers)}
    if runs:
        output_dir.mkdir(parents=True, exist_ok=True)
        (output_dir / RUN_FILE).write_text(json.dumps(runs, indent=2))


def _saved_runs(output_dir: Path) -> dict[str, str]:
    path = output_dir / RUN_FILE
    return json.loads(path.read_text()) if path.is_file() else {}


def _is_mlflow(cfg: DictConfig) -> bool:
    return str(cfg.get("_target_", "")).endswith("MLFlowLogger")


@contextmanager
def final_status(loggers: Iterable[Logger]) -> Iterator[None]:
    """Never leave a run RUNNING: FINISHED, KILLED (Ctrl-C, SIGTERM) or FAILED (an exception)."""
    runs = mlflow_loggers(loggers)
    try:
        yield
    except (KeyboardInterrupt, SystemExit):
        _set_status(runs, "KILLED")
        raise
    except BaseException:
        _set_status(runs, "FAILED")
        raise
    _set_status(runs, "FINISHED")


def _set_status(runs: Iterable[MLFlowLogger], status: str) -> None:
    for run in runs:
        try:
            run.experiment.set_terminated(run.run_id, status)
        except Exception as err:  # the tracking server may be what failed
            log.error("could not mark MLflow run %s %s: %s", run.run_id, status, err)
