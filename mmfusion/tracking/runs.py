"""Runs read back from MLflow: which runs, their predictions, and which configuration each is.

A configuration is everything a run's resolved config says except its replicate keys (seed,
CV fold) and per-run bookkeeping (paths, logger, trial numbers); runs that differ only in a
replicate key are repetitions of one configuration.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from mmfusion.errors import ConfigError

PREDICTIONS = "test_predictions.csv"
PARENT_TAG = "mlflow.parentRunId"
SWEEP_TAG = "mmfusion.sweep_dir"
REPLICATE_KEYS = ("seed", "data/fold", "data/layout/test_fold")
BOOKKEEPING_PREFIXES = ("paths/", "logger/", "callbacks/", "trainer/default_root_dir", "ckpt_path")
# groups whose members the fusion / backbone / modality tags already name
TAGGED_PREFIXES = ("fusion/", "backbone/", "modality/", "data/modalities", "run_name")
LABEL_TAGS = ("fusion", "backbone", "modality")


@dataclass
class RunRecord:
    """One finished run: its config, logged metrics, test predictions, and the history of the
    validation metric its checkpoint and early stopping were selected on."""

    run_id: str
    name: str
    params: dict[str, str]
    tags: dict[str, str]
    metrics: dict[str, float]
    predictions: pd.DataFrame
    label: str = ""
    replicate: tuple[str, ...] = field(default_factory=tuple)
    # (epoch, value) of the monitored validation metric, one per validation epoch
    val_history: list[tuple[int, float]] = field(default_factory=list)

    @property
    def class_names(self) -> list[str]:
        return [c.removeprefix("prob_") for c in self.predictions.columns if c.startswith("prob_")]

    @property
    def monitor(self) -> str:
        return self.params.get("monitor", "val/acc")

    @property
    def higher_is_better(self) -> bool:
        return self.params.get("monitor_mode", "max") == "max"

    @property
    def best_val(self) -> tuple[int, float] | None:
        """(epoch, value) of the first best validation score: the checkpoint that was tested."""
        if not self.val_history:
            return None
        sign = 1 if self.higher_is_better else -1
        return max(self.val_history, key=lambda item: (sign * item[1], -item[0]))

    @property
    def max_epochs(self) -> int | None:
        value = self.params.get("trainer/max_epochs")
        return int(value) if value not in (None, "None", "") else None


def client_for(tracking_uri: str):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri)


def experiment_id(client, name: str) -> str:
    found = client.get_experiment_by_name(name)
    if found is None:
        raise ConfigError(
            f"no MLflow experiment {name!r} in {client._tracking_client.tracking_uri}"
        )
    return found.experiment_id


def parent_of_sweep_dir(client, exp_id: str, sweep_dir: str | Path) -> str:
    """The parent run that the multirun writing into `sweep_dir` created."""
    wanted = str(Path(sweep_dir).expanduser().resolve())
    runs = client.search_runs([exp_id], filter_string=f"tags.`{SWEEP_TAG}` = '{wanted}'")
    if not runs:
        raise ConfigError(f"no MLflow parent run for the multirun dir {wanted}")
    return runs[0].info.run_id


def find_runs(client, exp_id: str, parent_run_id: str | None) -> list:
    """Finished job runs: the children of a parent run, or every job run of the experiment."""
    query = f"tags.`{PARENT_TAG}` = '{parent_run_id}'" if parent_run_id else ""
    runs = client.search_runs([exp_id], filter_string=query, max_results=10000)
    return [r for r in runs if SWEEP_TAG not in r.data.tags]


def load_records(client, runs: Sequence) -> tuple[list[RunRecord], list[str]]:
    """Records of the finished runs that logged test predictions; a note for each left out."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    records, skipped = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for run in runs:
            name = run.data.tags.get("mlflow.runName", run.info.run_id)
            if run.info.status != "FINISHED":
                skipped.append(f"{name} ({run.info.run_id[:8]}): status {run.info.status}")
                continue
            try:
                path = client.download_artifacts(run.info.run_id, PREDICTIONS, tmp)
            except Exception:  # MLflow raises several types for a missing artifact
                skipped.append(f"{name} ({run.info.run_id[:8]}): no {PREDICTIONS}")
                continue
            params = dict(run.data.params)
            records.append(
                RunRecord(
                    run.info.run_id,
                    name,
                    params,
                    dict(run.data.tags),
                    dict(run.data.metrics),
                    pd.read_csv(path, dtype={"sample_id": str, "patient": str}),
                    val_history=validation_history(
                        client, run.info.run_id, params.get("monitor", "val/acc")
                    ),
                )
            )
    return records, skipped


def validation_history(client, run_id: str, monitor: str) -> list[tuple[int, float]]:
    """(epoch, value) of `monitor` per validation epoch; the epoch is the one Lightning logged
    at the same step (0-based), else the position in the history."""
    history = sorted(
        client.get_metric_history(run_id, monitor), key=lambda m: (m.step, m.timestamp)
    )
    epochs = {m.step: int(m.value) for m in client.get_metric_history(run_id, "epoch")}
    return [(epochs.get(m.step, i), float(m.value)) for i, m in enumerate(history)]


def _bookkeeping(key: str, value: str, params: dict[str, str]) -> bool:
    output_dir = params.get("paths/output_dir")
    return key.startswith(BOOKKEEPING_PREFIXES) or bool(output_dir and output_dir in value)


def _short(value: str) -> str:
    """A float param as 3 significant digits (labels, not data: the params keep full values)."""
    try:
        number = float(value)
    except ValueError:
        return value
    return value if number.is_integer() and "e" not in value.lower() else f"{number:.3g}"


def label_configurations(records: Sequence[RunRecord]) -> list[str]:
    """Set each record's configuration label and replicate key; returns the varying keys."""
    keys = sorted({k for r in records for k in r.params})
    varying = [
        k
        for k in keys
        if k not in REPLICATE_KEYS
        and len({r.params.get(k) for r in records}) > 1
        and not any(_bookkeeping(k, r.params.get(k, ""), r.params) for r in records)
    ]
    tags = [t for t in LABEL_TAGS if len({r.tags.get(t) for r in records}) > 1] or list(LABEL_TAGS)

    def explained_by_tags(key: str) -> bool:
        values: dict[tuple, set] = {}
        for r in records:
            values.setdefault(tuple(r.tags.get(t) for t in LABEL_TAGS), set()).add(
                r.params.get(key)
            )
        return key.startswith(TAGGED_PREFIXES) and all(len(v) == 1 for v in values.values())

    extra = [k for k in varying if not explained_by_tags(k)]
    for record in records:
        parts = [f"{t}={record.tags.get(t, '?')}" for t in tags]
        parts += [f"{k.replace('/', '.')}={_short(record.params.get(k, '-'))}" for k in extra]
        record.label = " ".join(parts)
        record.replicate = tuple(record.params.get(k, "-") for k in REPLICATE_KEYS)
    return varying
