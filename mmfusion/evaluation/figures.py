"""Readable PNGs of the evaluation: confusion matrices, ROC / PR curves, reliability, samples."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from mmfusion.evaluation.summary import Curve, Reliability

MODALITY_TITLES = {"ct": "CT", "cxr": "CXR", "cough": "cough spectrogram"}
DPI = 120


def save_figure(fig: plt.Figure, path: Path) -> Path:
    # leave room for a figure title above the column titles
    top = 1 - 0.45 / fig.get_figheight() if fig.get_suptitle() else 1
    fig.tight_layout(rect=(0, 0, 1, top))
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def show_input(ax: plt.Axes, modality: str, array: np.ndarray) -> None:
    """Grey images; a spectrogram with low frequencies at the bottom."""
    if modality == "cough":
        ax.imshow(array, cmap="magma", origin="lower", aspect="auto")
    else:
        ax.imshow(array, cmap="gray")
    ax.set_xticks([])
    ax.set_yticks([])


def confusion_figure(
    matrix: np.ndarray, class_names: Sequence[str], path: Path, split: str
) -> Path:
    """Two panels: counts, and rates normalised per true class (rows sum to 1)."""
    rates = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    n = len(class_names)
    fig, axes = plt.subplots(1, 2, figsize=(2 * (1.6 + 1.0 * n) + 1.0, 1.4 + 1.0 * n))
    for ax, values, title, fmt in (
        (axes[0], matrix, "counts", "{:.0f}"),
        (axes[1], rates, "normalised by true class", "{:.0%}"),
    ):
        scale = values / max(values.max(), 1e-12)
        ax.imshow(scale, cmap="Blues", vmin=0, vmax=1)
        ax.set(
            xticks=range(n),
            yticks=range(n),
            xticklabels=class_names,
            yticklabels=class_names,
            xlabel="predicted",
            ylabel="true",
            title=f"{split} confusion matrix: {title}",
        )
        plt.setp(ax.get_xticklabels(), rotation=30, ha="right")
        for (i, j), value in np.ndenumerate(values):
            color = "white" if scale[i, j] > 0.5 else "black"
            ax.text(j, i, fmt.format(value), ha="center", va="center", color=color, fontsize=10)
    return save_figure(fig, path)


def curves_figure(
    curves: Sequence[Curve],
    class_names: Sequence[str],
    path: Path,
    kind: str,
    split: str,
    prevalence: np.ndarray,
) -> Path:
    """One-vs-rest ROC (kind='roc') or precision-recall (kind='pr') curves, one line per class."""
    fig, ax = plt.subplots(figsize=(6, 5))
    for name, curve, rate in zip(class_names, curves, prevalence, strict=True):
        label = f"{name} ({'AUC' if kind == 'roc' else 'AP'} {curve.area:.3f})"
        line = ax.plot(curve.x, curve.y, lw=1.8, label=label)[0]
        if kind == "pr":  # chance level of a one-vs-rest PR curve is the class prevalence
            ax.axhline(rate, color=line.get_color(), ls=":", lw=0.8)
    if kind == "roc":
        ax.plot([0, 1], [0, 1], color="grey", ls="--", lw=0.8, label="chance")
        ax.set(xlabel="false-positive rate", ylabel="true-positive rate")
    else:
        ax.set(xlabel="recall", ylabel="precision")
    title = "ROC" if kind == "roc" else "precision-recall (dotted: prevalence)"
    ax.set(xlim=(-0.01, 1.01), ylim=(-0.01, 1.01), title=f"{split}: {title}, one-vs-rest")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right" if kind == "roc" else "lower left", fontsize=9)
    return save_figure(fig, path)


def reliability_figure(rel: Reliability, path: Path, split: str) -> Path:
    """Accuracy vs confidence per bin (bars) against the diagonal, with the sample histogram."""
    fig, (top, bottom) = plt.subplots(
        2, 1, figsize=(5.5, 6), sharex=True, gridspec_kw={"height_ratios": [3, 1]}
    )
    width = np.diff(rel.edges)
    filled = rel.count > 0
    top.bar(
        rel.edges[:-1][filled],
        rel.accuracy[filled],
        width=width[filled],
        align="edge",
        edgecolor="black",
        color="tab:blue",
        label="accuracy",
    )
    top.bar(
        rel.edges[:-1][filled],
        (rel.confidence - rel.accuracy)[filled],
        bottom=rel.accuracy[filled],
        width=width[filled],
        align="edge",
        color="tab:red",
        alpha=0.35,
        label="gap to confidence",
    )
    top.plot([0, 1], [0, 1], "k--", lw=1, label="perfect calibration")
    top.set(ylabel="accuracy", ylim=(0, 1), title=f"{split} reliability (ECE {rel.ece:.3f})")
    top.legend(loc="upper left", fontsize=9)
    bottom.bar(rel.edges[:-1], rel.count, width=width, align="edge", color="grey")
    bottom.set(xlabel="top-1 confidence", ylabel="samples", xlim=(0, 1))
    return save_figure(fig, path)


def samples_figure(
    inputs: Sequence[dict[str, np.ndarray]],
    labels: Sequence[int],
    probs: np.ndarray,
    class_names: Sequence[str],
    path: Path,
    split: str,
) -> Path:
    """One row per sample (a few per class): each modality, with true / predicted label."""
    modalities = list(inputs[0])
    rows, cols = len(inputs), len(modalities)
    fig, axes = plt.subplots(rows, cols, figsize=(2.6 * cols + 0.4, 2.5 * rows), squeeze=False)
    for row, (sample, label, p) in enumerate(zip(inputs, labels, probs, strict=True)):
        pred = int(p.argmax())
        for col, modality in enumerate(modalities):
            ax = axes[row, col]
            show_input(ax, modality, sample[modality])
            if row == 0:
                ax.set_title(MODALITY_TITLES.get(modality, modality), fontsize=11)
        ok = pred == label
        axes[row, 0].set_ylabel(
            f"true {class_names[label]}\npred {class_names[pred]} ({p[pred]:.2f})",
            color="darkgreen" if ok else "firebrick",
            fontsize=10,
        )
    fig.suptitle(f"{split} samples: green = correct, red = wrong", fontsize=12)
    return save_figure(fig, path)
