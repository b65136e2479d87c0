"""The MLflow experiment: created once, before any job starts, so parallel jobs never race."""

from __future__ import annotations

import time
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

#: the multirun's parent run id, for its jobs (set by training.multirun.MultirunParentRun)
PARENT_RUN_ENV = "MMFUSION_PARENT_RUN_ID"

#: MLflow 3's experiment kind; its UI opens an experiment of the kind below on the runs table
#: (classic model training) instead of the GenAI view (traces, evaluations)
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
CUSTOM_MODEL_DEVELOPMENT = "custom_model_development"


def ensure_experiment(tracking_uri: str, name: str, artifact_location: str | None) -> str:
    """The experiment's id, creating it if needed (tolerant of a concurrent creator), tagged
    with the kind of classic model training, which an existing untagged experiment gets now."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri)
    for attempt in range(5):
        found = client.get_experiment_by_name(name)
        if found is not None:
            if EXPERIMENT_KIND_TAG not in found.tags:  # a kind chosen in the UI is kept
                client.set_experiment_tag(
                    found.experiment_id, EXPERIMENT_KIND_TAG, CUSTOM_MODEL_DEVELOPMENT
                )
            return found.experiment_id
        try:
            return client.create_experiment(
                name,
                artifact_location=artifact_location,
                tags={EXPERIMENT_KIND_TAG: CUSTOM_MODEL_DEVELOPMENT},
            )
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


def mlflow_logger_config(config: DictConfig) -> DictConfig | None:
    """The MLflow logger's config node of a composed config, if it logs to MLflow."""
    for cfg in (config.get("logger") or {}).values():
        if cfg and str(cfg.get("_target_", "")).endswith("MLFlowLogger"):
            return cfg
    return None
