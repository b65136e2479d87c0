"""Who a trained model is, for the people shown its predictions: the MLflow run it came from,
its fusion, backbone, modalities and classes, the data it was trained on, and its test metrics
with what they were measured on (test patients, accuracy's 95 % Wilson interval)."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from omegaconf import OmegaConf

from mmfusion.serving.sources import is_mlflow_uri, tracking_uri_or_default

log = logging.getLogger(__name__)
SHOWN_METRICS = {
    "test/acc": "accuracy",
    "test/auroc": "macro AUROC",
    "test/f1": "macro F1",
    "test/ece": "calibration error (ECE)",
}


@dataclass
class ModelCard:
    source: str
    fusion: str
    backbone: str
    modalities: list[str]
    classes: list[str]
    data: str
    trained_for_missing: bool
    run_id: str | None = None
    test_metrics: dict[str, float] = field(default_factory=dict)
    n_test: int | None = None

    def markdown(self) -> str:
        lines = [
            f"**Model** `{self.source}`" + (f", MLflow run `{self.run_id}`" if self.run_id else ""),
            f"- fusion **{self.fusion}**, backbone **{self.backbone}**, modalities "
            f"**{', '.join(self.modalities)}**, classes {', '.join(self.classes)}",
            f"- trained on {self.data}; "
            + (
                "trained with modality dropout, so it expects missing modalities"
                if self.trained_for_missing
                else "trained with every modality present: a prediction with one missing is "
                "less reliable"
            ),
        ]
        if not self.test_metrics:
            lines.append("- test metrics: not recorded with this model")
            return "\n".join(lines)
        measured = f"{self.n_test} test patients" if self.n_test else "its test split"
        shown = []
        for key, name in SHOWN_METRICS.items():
            if key in self.test_metrics:
                value = self.test_metrics[key]
                shown.append(f"{name} {value:.3f}{self._interval(key, value)}")
        lines.append(f"- on {measured}: " + ", ".join(shown))
        return "\n".join(lines)

    def _interval(self, key: str, value: float) -> str:
        if key != "test/acc" or not self.n_test:
            return ""
        from statsmodels.stats.proportion import proportion_confint

        low, high = proportion_confint(round(value * self.n_test), self.n_test, method="wilson")
        return f" (95 % CI {low:.3f}–{high:.3f})"


def model_card(
    source: str, checkpoint: Path, hparams: Mapping[str, Any], tracking_uri: str | None = None
) -> ModelCard:
    """The card of the model in `checkpoint`, which `source` resolved to."""
    config = OmegaConf.create(dict(hparams["run_config"]))
    card = ModelCard(
        source=str(source),
        fusion=str(
            OmegaConf.select(config, "logger.mlflow.tags.fusion")
            or str(config.fusion._target_).rsplit(".", 1)[-1]
        ),
        backbone=str(OmegaConf.select(config, "backbone.name", default="?")),
        modalities=list(config.modality.names),
        classes=list(hparams["class_names"]),
        data=_data_description(config),
        trained_for_missing=float(hparams.get("modality_dropout", 0.0)) > 0,
    )
    if is_mlflow_uri(source):
        _from_mlflow(card, checkpoint, tracking_uri_or_default(tracking_uri))
    elif checkpoint.parent.name == "checkpoints":
        _from_run_dir(card, checkpoint.parent.parent)
    return card


def _data_description(config) -> str:
    layout = str(OmegaConf.select(config, "data.layout._target_", default="")).rsplit(".", 1)[-1]
    if layout == "SyntheticLayout":
        return "the synthetic benchmark (procedural CT, CXR and cough; not patient data)"
    where = OmegaConf.select(config, "data.manifest") or OmegaConf.select(config, "data.root")
    return f"`{where}`" if where else (layout or "unknown data")


def _from_run_dir(card: ModelCard, run_dir: Path) -> None:
    runs = run_dir / "mlflow_run.json"
    if runs.is_file():
        card.run_id = next(iter(json.loads(runs.read_text()).values()), None)
    metrics = run_dir / "metrics.json"
    if metrics.is_file():
        values = json.loads(metrics.read_text())
        card.test_metrics = {k: float(v) for k, v in values.items() if k.startswith("test/")}
    predictions = run_dir / "test_predictions.csv"
    if predictions.is_file():
        card.n_test = len(pd.read_csv(predictions, usecols=[0]))


def _from_mlflow(card: ModelCard, checkpoint: Path, tracking_uri: str) -> None:
    """Run id (from the downloaded model's MLmodel file), test metrics and test size (from the
    tracking store); left empty, with a warning, when they cannot be read."""
    from mlflow.models import Model
    from mlflow.tracking import MlflowClient

    mlmodel = checkpoint.parent.parent / "MLmodel"
    try:
        card.run_id = Model.load(str(mlmodel)).run_id
        run = MlflowClient(tracking_uri).get_run(card.run_id)
    except Exception as err:  # the page works without the model's identity; say why it is missing
        log.warning("no MLflow run found for %s in %s: %s", card.source, tracking_uri, err)
        return
    card.test_metrics = {k: v for k, v in run.data.metrics.items() if k.startswith("test/")}
    n_test = run.data.tags.get("data.n_test")
    card.n_test = int(n_test) if n_test and n_test.isdigit() else None
