"""Lightning's MLflow logger as mmfusion uses it: nested runs, artifacts, resumed runs, and a
final status that is never left RUNNING."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.loggers import Logger, MLFlowLogger
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig

from mmfusion.runtime.signals import deferred
from mmfusion.tracking.experiment import ensure_experiment
from mmfusion.tracking.runs import PARENT_TAG
from mmfusion.tracking.server import DEFAULT_TIMEOUT, is_server, quick_client_retries, unreachable

log = logging.getLogger(__name__)
#: tag of a run in the fallback store: the server and run it continues
CONTINUES_TAG = "mmfusion.continues"


def mlflow_loggers(loggers: Iterable[Logger]) -> list[MLFlowLogger]:
    return [lg for lg in loggers if isinstance(lg, MLFlowLogger)]


def set_tags(loggers: Iterable[Logger], tags: dict[str, str]) -> None:
    """Tags on each MLflow logger's run."""
    for logger in mlflow_loggers(loggers):
        for key, value in tags.items():
            logger.experiment.set_tag(logger.run_id, key, value)


def log_artifact(loggers: Iterable[Logger], path: Path, artifact_path: str | None = None) -> None:
    """Upload a file or folder to every MLflow run among the loggers (rank 0 only)."""
    for logger in mlflow_loggers(loggers):
        if path.is_dir():
            logger.experiment.log_artifacts(logger.run_id, str(path), artifact_path)
        else:
            logger.experiment.log_artifact(logger.run_id, str(path), artifact_path)


class NestedMLFlowLogger(MLFlowLogger):
    """Lightning's MLflow logger whose run is a child of `parent_run_id` (a multirun's run), that
    survives a tracking server lost mid-run, and leaves the run's final status to `final_status`.

    The parent id reaches a job through `logger.mlflow.parent_run_id`, which interpolates the
    environment variable that `MultirunParentRun` sets for the duration of a multirun.

    When a call to a tracking server fails and the server no longer answers its health check
    (within `server_timeout` s), the run goes on in a new run of `fallback_uri` (tagged with the
    server run it continues) and the failed call is replayed there: nothing logged is lost, and
    the user is told where the rest went.
    """

    def __init__(
        self,
        *args: Any,
        parent_run_id: str | None = None,
        server_timeout: float = DEFAULT_TIMEOUT,
        fallback_uri: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        if parent_run_id:
            self.tags = {**(self.tags or {}), PARENT_TAG: parent_run_id}
        self.server_timeout = server_timeout
        self.fallback_uri = fallback_uri
        #: (server URI, its run id) once the run went on in the fallback store
        self.lost: tuple[str, str] | None = None
        self._params: dict[str, Any] = {}
        # a reopened run (resume): what it logged already, not logged twice
        self._logged: set[tuple[str, int, float]] | None = None if kwargs.get("run_id") else set()
        if is_server(self._tracking_uri):
            quick_client_retries()

    @property
    def experiment(self) -> Any:
        try:
            client = super().experiment
        except Exception as err:  # the server died before the run was created
            if not self.fall_back(err):
                raise
            client = self._mlflow_client
        return client if rank_zero_only.rank else FallbackClient(self)

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        """Lightning's, leaving out values a reopened run holds already at the same step (a
        resumed run repeats the phase it was stopped in)."""
        if self._logged is None:
            self._logged = self._history()
        fresh = {k: v for k, v in metrics.items() if (k, step or 0, float(v)) not in self._logged}
        if fresh:
            super().log_metrics(fresh, step)

    def _history(self) -> set[tuple[str, int, float]]:
        client, run_id = self.experiment, self.run_id
        keys = client.get_run(run_id).data.metrics
        return {
            (m.key, m.step, m.value) for key in keys for m in client.get_metric_history(run_id, key)
        }

    def log_hyperparams(self, params: Any) -> None:
        self._params = dict(params) if isinstance(params, dict) else self._params
        super().log_hyperparams(params)

    def finalize(self, status: str = "success") -> None:
        """Nothing: Lightning calls this after each of fit and test, and a run marked FINISHED
        after fit would stay so if the job died while testing; `final_status` sets it once."""

    def fall_back(self, error: BaseException) -> bool:
        """Go on in the fallback store if `error` came from a server that is gone; whether so."""
        if self.lost or not self.fallback_uri or not is_server(self._tracking_uri):
            return False
        reason = unreachable(self._tracking_uri, self.server_timeout)
        if reason is None:  # the server is there: a genuine error
            return False
        import mlflow
        from mlflow.tracking import MlflowClient
        from mlflow.utils.mlflow_tags import MLFLOW_RUN_NAME

        server, run_id = self._tracking_uri, self._run_id
        experiment_id = ensure_experiment(
            self.fallback_uri, self._experiment_name, self._artifact_location
        )
        client = MlflowClient(self.fallback_uri)
        tags = {k: v for k, v in (self.tags or {}).items() if k != PARENT_TAG}
        tags |= {CONTINUES_TAG: f"{server} run {run_id}", MLFLOW_RUN_NAME: self._run_name or ""}
        run = client.create_run(experiment_id, tags=tags)
        self._mlflow_client, self._tracking_uri = client, self.fallback_uri
        self._run_id, self._experiment_id = run.info.run_id, experiment_id
        self.lost = (server, run_id or "-")
        mlflow.set_tracking_uri(self.fallback_uri)
        log.warning(
            "the tracking server %s stopped answering (%s): run %s there keeps what was logged "
            "so far; the rest goes to %s, run %s (tag %s); training goes on",
            server,
            reason,
            run_id,
            self.fallback_uri,
            self._run_id,
            CONTINUES_TAG,
        )
        if self._params:
            super().log_hyperparams(self._params)
        return True


class FallbackClient:
    """The logger's MlflowClient, whose calls that fail because the server is gone are replayed
    on the fallback store (with the fallback run's id in place of the lost run's).

    Each call is a `deferred()` section: a SIGTERM that lands inside a write to a SQLite store
    would leave its transaction open, the database locked, and the run's KILLED status
    unwritable; it waits for the call to end instead.
    """

    def __init__(self, logger: NestedMLFlowLogger) -> None:
        self._logger = logger

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._logger._mlflow_client, name)
        if not callable(method):
            return method

        def call(*args: Any, **kwargs: Any) -> Any:
            lost_run = self._logger._run_id
            with deferred():
                try:
                    return method(*args, **kwargs)
                except Exception as err:
                    if not self._logger.fall_back(err):
                        raise
                run = self._logger._run_id
                args = tuple(run if a == lost_run else a for a in args)
                kwargs = {k: run if v == lost_run else v for k, v in kwargs.items()}
                return getattr(self._logger._mlflow_client, name)(*args, **kwargs)

        return call


class LogDataSizes(pl.Callback):
    """Lightning callback: tag each MLflow run with its split sizes (`data.n_train`, ...), so
    that a report can say what its numbers were measured on."""

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        datasets = getattr(trainer.datamodule, "datasets", {}) or {}
        for logger in mlflow_loggers(trainer.loggers):
            for split, dataset in datasets.items():
                logger.experiment.set_tag(logger.run_id, f"data.n_{split}", str(len(dataset)))


#: the context MLflow shows for each split's dataset input
SPLIT_CONTEXTS = {"train": "training", "val": "validation", "test": "testing"}


def dataset_input(description: Any):
    """An MLflow dataset input of one split, as the datamodule's `describe()` gives it: name,
    digest, source (a local path), schema (the modalities as columns, with the classes) and
    profile (patients, per class), tagged with the split's context."""
    from mlflow.entities import Dataset, DatasetInput, InputTag
    from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

    columns = [{"type": "string", "name": m, "required": True} for m in description.modalities]
    columns.append({"type": "string", "name": "label", "required": True})
    schema = {
        "mlflow_colspec": columns,
        "modalities": description.modalities,
        "classes": description.classes,
    }
    profile = {"num_rows": description.size, **{f"n_{c}": n for c, n in description.counts.items()}}
    dataset = Dataset(
        name=description.name,
        digest=description.digest,
        source_type="local",
        source=json.dumps({"uri": description.source}),
        schema=json.dumps(schema),
        profile=json.dumps(profile),
    )
    context = SPLIT_CONTEXTS.get(description.split, description.split)
    return DatasetInput(dataset, tags=[InputTag(MLFLOW_DATASET_CONTEXT, context)])


class LogDatasetInputs(pl.Callback):
    """Lightning callback: log train / val / test as the MLflow run's dataset inputs (what the
    UI's dataset column and a result's lineage to its data show), from `datamodule.describe()`."""

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        describe = getattr(trainer.datamodule, "describe", None)
        runs = mlflow_loggers(trainer.loggers)
        if not (trainer.is_global_zero and runs and describe):
            return
        inputs = [dataset_input(d) for d in describe()]
        for logger in runs:
            log_inputs_once(logger.experiment, logger.run_id, inputs)


def log_inputs_once(client: Any, run_id: str, inputs: list, tries: int = 3) -> None:
    """Log the dataset inputs, retrying when parallel jobs logging the same dataset race on its
    first insert (the store checks for the dataset, then inserts it: the loser of the race gets a
    UNIQUE-constraint error; on the retry the dataset exists and is reused)."""
    from mlflow.exceptions import MlflowException

    for attempt in range(1, tries + 1):
        try:
            client.log_inputs(run_id, datasets=inputs)
            return
        except MlflowException as error:
            if "unique constraint" not in str(error).lower() or attempt == tries:
                raise
            log.info("dataset inputs raced with a parallel job (try %d), retrying", attempt)
            time.sleep(0.2 * attempt)


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
