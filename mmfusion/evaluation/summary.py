"""Numbers behind the evaluation artifacts, from class probabilities and true labels."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torchmetrics.functional.classification import (
    multiclass_auroc,
    multiclass_average_precision,
    multiclass_calibration_error,
    multiclass_confusion_matrix,
    multiclass_f1_score,
    multiclass_precision,
    multiclass_precision_recall_curve,
    multiclass_recall,
    multiclass_roc,
)

from mmfusion.evaluation.markdown import markdown_table

CALIBRATION_BINS = 15


@dataclass
class Curve:
    """One class's curve: x, y and the area (nan when the class is absent from the split)."""

    x: np.ndarray
    y: np.ndarray
    area: float


@dataclass
class Reliability:
    """Top-1 confidence bins: mean confidence, accuracy and sample count per bin."""

    edges: np.ndarray
    confidence: np.ndarray
    accuracy: np.ndarray
    count: np.ndarray
    ece: float


def _numpy(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy()


def confusion(probs: torch.Tensor, labels: torch.Tensor) -> np.ndarray:
    """Counts, rows = true class, columns = predicted class."""
    return _numpy(multiclass_confusion_matrix(probs, labels, probs.shape[1]))


def roc_curves(probs: torch.Tensor, labels: torch.Tensor) -> list[Curve]:
    """One-vs-rest ROC per class: x = false-positive rate, y = true-positive rate."""
    fpr, tpr, _ = multiclass_roc(probs, labels, probs.shape[1])
    aucs = multiclass_auroc(probs, labels, probs.shape[1], average=None)
    return _per_class(fpr, tpr, aucs, labels)


def pr_curves(probs: torch.Tensor, labels: torch.Tensor) -> list[Curve]:
    """One-vs-rest precision-recall per class: x = recall, y = precision; area = AP."""
    precision, recall, _ = multiclass_precision_recall_curve(probs, labels, probs.shape[1])
    ap = multiclass_average_precision(probs, labels, probs.shape[1], average=None)
    return _per_class(recall, precision, ap, labels)


def _per_class(x, y, areas: torch.Tensor, labels: torch.Tensor) -> list[Curve]:
    """A curve per class; its area NaN where the class has no sample (undefined, not 0)."""
    present = torch.bincount(labels, minlength=len(areas)) > 0
    return [
        Curve(_numpy(x[c]), _numpy(y[c]), float(areas[c]) if present[c] else float("nan"))
        for c in range(len(areas))
    ]


def classification_report(
    probs: torch.Tensor, labels: torch.Tensor, class_names: Sequence[str]
) -> dict[str, dict[str, float]]:
    """Per class precision / recall / F1 / support, plus macro averages and accuracy."""
    classes = probs.shape[1]
    per_class = {
        name: fn(probs, labels, classes, average=None)
        for name, fn in (
            ("precision", multiclass_precision),
            ("recall", multiclass_recall),
            ("f1", multiclass_f1_score),
        )
    }
    support = torch.bincount(labels, minlength=classes)
    report = {
        class_names[c]: {
            **{k: float(v[c]) for k, v in per_class.items()},
            "support": int(support[c]),
        }
        for c in range(classes)
    }
    report["macro avg"] = {
        **{k: float(v.mean()) for k, v in per_class.items()},
        "support": int(support.sum()),
    }
    accuracy = float((probs.argmax(1) == labels).float().mean())
    report["accuracy"] = {"value": accuracy, "support": int(support.sum())}
    return report


def report_markdown(report: dict[str, dict[str, float]], title: str) -> str:
    """The classification report as a markdown table."""
    rows = [
        [name, *(f"{row[k]:.3f}" for k in ("precision", "recall", "f1")), row["support"]]
        for name, row in report.items()
        if name != "accuracy"
    ]
    table = markdown_table(["class", "precision", "recall", "F1", "support"], rows, "lrrrr")
    acc = report["accuracy"]
    accuracy = f"Accuracy: {acc['value']:.3f} on {acc['support']} samples."
    return "\n".join([f"# {title}", "", table, "", accuracy, ""])


def reliability(
    probs: torch.Tensor, labels: torch.Tensor, bins: int = CALIBRATION_BINS
) -> Reliability:
    """Top-1 confidence vs accuracy in equal-width bins; ECE from torchmetrics (L1)."""
    ece = float(multiclass_calibration_error(probs, labels, probs.shape[1], n_bins=bins, norm="l1"))
    confidence, predicted = probs.max(1)
    correct = _numpy((predicted == labels).float())
    confidence = _numpy(confidence)
    edges = np.linspace(0, 1, bins + 1)
    index = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    count = np.bincount(index, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.bincount(index, confidence, bins) / count
        accuracy = np.bincount(index, correct, bins) / count
    return Reliability(edges, mean_conf, accuracy, count, ece)


def first_per_class(labels: Sequence[int], per_class: int) -> list[int]:
    """Indices of the first `per_class` samples of each class, in class order (deterministic)."""
    labels = np.asarray(labels)
    return [int(i) for c in np.unique(labels) for i in np.flatnonzero(labels == c)[:per_class]]
