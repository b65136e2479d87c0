"""MLflow plumbing: create the experiment once, before jobs race, and log files to the run."""

from __future__ import annotations

import atexit
import json
import logging
import os
import signal
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from lightning.pytorch.loggers import Logger, MLFlowLogger
from omegaconf import DictConfig

log = logging.getLogger(__name__)


def ensure_experiment(tracking_uri: str, name: str, artifact_location: str | None) -> str:
    """The experiment's id, creating it if needed; tolerant of a concurrent creator."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri)
    for attempt in range(5):
        found = client.get_experiment_by_name(name)
        if found is not None:
            return found.experiment_id
        try:
            return client.create_experiment(name, artifact_location=artifact_location)
        except MlflowException:  # another process created it between our two calls
            time.sleep(0.2 * (attempt + 1))
    raise RuntimeError(f"could not create MLflow experiment {name!r} at {tracking_uri}")


class CreateMlflowExperiment(Callback):
    """Hydra callback: create the MLflow experiment before the first (or any parallel) job."""

    def _create(self, config: DictConfig) -> None:
        HydraConfig.instance().set_config(config)  # Hydra sets it only per job, later
        for cfg in (config.get("logger") or {}).values():
            if cfg and str(cfg.get("_target_", "")).endswith("MLFlowLogger"):
                ensure_experiment(
                    cfg.tracking_uri, cfg.experiment_name, cfg.get("artifact_location")
                )

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._create(config)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._create(config)


def mlflow_loggers(loggers: Iterable[Logger]) -> list[MLFlowLogger]:
    return [lg for lg in loggers if isinstance(lg, MLFlowLogger)]


def log_artifact(loggers: Iterable[Logger], path: Path, artifact_path: str | None = None) -> None:
    """Upload a file or folder to every MLflow run among the loggers (rank 0 only)."""
    for logger in mlflow_loggers(loggers):
        if path.is_dir():
            logger.experiment.log_artifacts(logger.run_id, str(path), artifact_path)
        else:
            logger.experiment.log_artifact(logger.run_id, str(path), artifact_path)


PARENT_RUN_ENV = "MMFUSION_PARENT_RUN_ID"


class NestedMLFlowLogger(MLFlowLogger):
    """Lightning's MLflow logger whose run is a child of `parent_run_id` (a multirun's run).

    The id reaches a job through `logger.mlflow.parent_run_id`, which interpolates the
    environment variable that `MultirunParentRun` sets for the duration of a multirun.
    """

    def __init__(self, *args: Any, parent_run_id: str | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if parent_run_id:
            from mmfusion.runs import PARENT_TAG

            self.tags = {**(self.tags or {}), PARENT_TAG: parent_run_id}


def _mlflow_logger_config(config: DictConfig) -> DictConfig | None:
    for cfg in (config.get("logger") or {}).values():
        if cfg and str(cfg.get("_target_", "")).endswith("MLFlowLogger"):
            return cfg
    return None


class MultirunParentRun(Callback):
    """Hydra callback: an MLflow parent run per multirun, its jobs as children, and at the end
    the comparison report (`mmfusion.compare`) written to `<sweep dir>/comparison` and logged
    to the parent run."""

    def __init__(self, report: bool = True, n_resamples: int = 2000) -> None:
        self.report = report
        self.n_resamples = n_resamples
        self.run_id: str | None = None

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        from mlflow.tracking import MlflowClient

        HydraConfig.instance().set_config(config)
        logger_cfg = _mlflow_logger_config(config)
        if logger_cfg is None:
            return
        exp_id = ensure_experiment(
            logger_cfg.tracking_uri, logger_cfg.experiment_name, logger_cfg.get("artifact_location")
        )
        from mmfusion.runs import SWEEP_TAG

        sweep_dir = Path(str(config.hydra.sweep.dir)).expanduser().resolve()
        overrides = " ".join(config.hydra.overrides.task)
        run = MlflowClient(logger_cfg.tracking_uri).create_run(
            exp_id,
            run_name=f"multirun-{sweep_dir.name}",
            tags={SWEEP_TAG: str(sweep_dir), "mmfusion.overrides": overrides[:5000]},
        )
        self.run_id = run.info.run_id
        self.tracking_uri = logger_cfg.tracking_uri
        os.environ[PARENT_RUN_ENV] = self.run_id
        # a failing job ends the multirun without on_multirun_end: never leave the parent RUNNING
        atexit.register(self._mark_failed_if_open)
        log.info("MLflow parent run %s for the multirun in %s", self.run_id, sweep_dir)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        from mlflow.tracking import MlflowClient

        if self.run_id is None:
            return
        os.environ.pop(PARENT_RUN_ENV, None)
        logger_cfg = _mlflow_logger_config(config)
        client = MlflowClient(logger_cfg.tracking_uri)
        if self.report:
            from mmfusion.compare import compare

            sweep_dir = Path(str(config.hydra.sweep.dir)).expanduser().resolve()
            try:
                report = compare(
                    logger_cfg.tracking_uri,
                    logger_cfg.experiment_name,
                    parent_run_id=self.run_id,
                    out_dir=sweep_dir / "comparison",
                    n_resamples=self.n_resamples,
                )
                log.info("comparison report: %s", report)
            except Exception:  # the jobs' runs are kept whatever the report does
                log.exception("comparison report failed; the runs are in MLflow")
        client.set_terminated(self.run_id)
        self.run_id = None

    def _mark_failed_if_open(self) -> None:
        if self.run_id is not None:
            from mlflow.tracking import MlflowClient

            MlflowClient(self.tracking_uri).set_terminated(self.run_id, "FAILED")
            self.run_id = None


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
