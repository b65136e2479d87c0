"""A multirun is one MLflow parent run with its jobs as children, and ends with a comparison."""

from __future__ import annotations

import atexit
import logging
import os
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from mmfusion.runtime.signals import deferred, install, received, stop_on_signals
from mmfusion.tracking.experiment import PARENT_RUN_ENV, ensure_experiment, mlflow_logger_config
from mmfusion.tracking.runs import SWEEP_TAG

log = logging.getLogger(__name__)


class MultirunParentRun(Callback):
    """Hydra callback: an MLflow parent run per multirun, its jobs as children, and at the end
    the comparison report (`mmfusion.evaluation.comparison`) written to
    `<sweep dir>/comparison` and logged to the parent run."""

    def __init__(self, report: bool = True, n_resamples: int = 2000) -> None:
        self.report = report
        self.n_resamples = n_resamples
        self.run_id: str | None = None

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        from mlflow.tracking import MlflowClient

        HydraConfig.instance().set_config(config)
        logger_cfg = mlflow_logger_config(config)
        if logger_cfg is None:
            return
        exp_id = ensure_experiment(
            logger_cfg.tracking_uri, logger_cfg.experiment_name, logger_cfg.get("artifact_location")
        )

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
        # a failing or stopped job ends the multirun without on_multirun_end: never leave the
        # parent RUNNING
        atexit.register(self._mark_failed_if_open)
        install()  # a signal between jobs, too, stops the multirun with its parent run KILLED
        log.info("MLflow parent run %s for the multirun in %s", self.run_id, sweep_dir)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        from mlflow.tracking import MlflowClient

        if self.run_id is None:
            return
        os.environ.pop(PARENT_RUN_ENV, None)
        logger_cfg = mlflow_logger_config(config)
        client = MlflowClient(logger_cfg.tracking_uri)
        if self.report:
            sweep_dir = Path(str(config.hydra.sweep.dir)).expanduser().resolve()
            with stop_on_signals():  # SIGTERM / SIGINT: parent run KILLED (atexit), 143 / 130
                self._compare(logger_cfg, sweep_dir)
        with deferred():  # the handler `install()` set is still on: never cut a write in two
            client.set_terminated(self.run_id)
        self.run_id = None

    def _compare(self, logger_cfg: DictConfig, sweep_dir: Path) -> None:
        from mmfusion.evaluation.comparison import compare

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

    def _mark_failed_if_open(self) -> None:
        """A multirun that ended early: KILLED by a signal (a job's or the comparison's), else
        FAILED."""
        if self.run_id is not None:
            from mlflow.tracking import MlflowClient

            status = "KILLED" if received() else "FAILED"
            MlflowClient(self.tracking_uri).set_terminated(self.run_id, status)
            self.run_id = None
