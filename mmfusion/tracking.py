"""MLflow plumbing: create the experiment once, before jobs race, and log files to the run."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

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
