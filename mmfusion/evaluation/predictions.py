"""What a finished run leaves: the test-predictions table and the end-of-run summary."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table


def write_predictions(
    path: Path, samples: Sequence, probs: np.ndarray, class_names: Sequence[str]
) -> Path:
    """One row per test sample: id, its patient (with `data.patient_key`), true / predicted
    label, class probabilities, its files.

    This file is what the comparison report's bootstrap and McNemar tests are computed from.
    """
    import pandas as pd

    frame = pd.DataFrame(
        {
            "sample_id": [s.sample_id for s in samples],
            "label": [s.label for s in samples],
            "label_name": [class_names[s.label] for s in samples],
            "pred": probs.argmax(axis=1),
            "pred_name": [class_names[i] for i in probs.argmax(axis=1)],
        }
    )
    patients = [getattr(s, "patient", None) for s in samples]
    if any(p is not None for p in patients):  # data.patient_key: several samples per person
        frame.insert(
            1,
            "patient",
            [p if p is not None else s.sample_id for p, s in zip(patients, samples, strict=True)],
        )
    for i, name in enumerate(class_names):
        frame[f"prob_{name}"] = probs[:, i]
    for modality in samples[0].files:
        frame[f"file_{modality}"] = [str(s.files[modality]) for s in samples]
    frame.to_csv(path, index=False)
    return path


def print_summary(
    metrics: Mapping[str, float], run_id: str | None, output_dir: Path, tracking_uri: str | None
) -> None:
    """The end-of-run table: test metrics, where the run and its files are."""
    table = Table(title="mmfusion run summary", show_header=True)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name in sorted(metrics):
        table.add_row(name, f"{metrics[name]:.4f}")
    table.add_section()
    table.add_row("run dir", str(output_dir))
    if run_id:
        table.add_row("mlflow run id", run_id)
        table.add_row("mlflow store", str(tracking_uri))
    Console().print(table)
