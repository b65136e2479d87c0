"""Per-modality contribution: the drop in true-class probability when the modality is replaced
by its training mean (the constant the classifier normalises with), and per-sample weights."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from mmfusion.data.loading import batch_loader
from mmfusion.evaluation.figures import save_figure
from mmfusion.evaluation.markdown import markdown_table
from mmfusion.models.contracts import ModalityWeighting


@torch.no_grad()
def probability_drops(
    model: torch.nn.Module,
    inputs: dict[str, torch.Tensor],
    target: torch.Tensor,
    present: dict[str, torch.Tensor] | None = None,
) -> tuple[dict[str, torch.Tensor], torch.Tensor | None]:
    """{modality: (B,) drop in the probability of class `target` when that modality is replaced
    by its training mean}, for the modalities present (per `present`, default all); and the
    modality weights of the full forward pass, for fusions that have them (else None)."""
    full = model(inputs, present).float().softmax(1).gather(1, target[:, None])[:, 0]
    weights = None
    if isinstance(model.net, ModalityWeighting) and model.net.modality_weights is not None:
        weights = model.net.modality_weights.float().cpu()
    drops = {}
    for modality, x in inputs.items():
        if present is not None and modality in present and not present[modality].any():
            continue
        mean = getattr(model, f"mean_{modality}")
        ablated = model({**inputs, modality: torch.full_like(x, float(mean))}, present).float()
        drops[modality] = (full - ablated.softmax(1).gather(1, target[:, None])[:, 0]).cpu()
    return drops, weights


@torch.no_grad()
def ablate(
    model: torch.nn.Module, dataset: Dataset, batch_size: int = 64
) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """Per sample: label, true-class probability drop per modality; and modality weights if any."""
    device = next(model.parameters()).device
    drops, weights, labels = [], [], []
    for inputs, label in batch_loader(dataset, batch_size):
        inputs = {m: x.to(device) for m, x in inputs.items()}
        label = label.to(device)
        row, batch_weights = probability_drops(model, inputs, label)
        if batch_weights is not None:
            weights.append(batch_weights)
        drops.append(pd.DataFrame({m: v.numpy() for m, v in row.items()}))
        labels.append(label.cpu())
    label_array = torch.cat(labels).numpy()
    drop_frame = pd.concat(drops, ignore_index=True).assign(label=label_array)
    if not weights:
        return drop_frame, None
    weight_frame = pd.DataFrame(torch.cat(weights).numpy(), columns=list(model.net.modalities))
    return drop_frame, weight_frame.assign(label=label_array)


def contribution_table(drops: pd.DataFrame, class_names: Sequence[str]) -> pd.DataFrame:
    """Mean drop and its standard error per modality, per true class and over all samples."""
    modalities = [c for c in drops.columns if c != "label"]
    groups = [("all", drops)] + [
        (class_names[c], drops[drops.label == c]) for c in sorted(drops.label.unique())
    ]
    rows = []
    for name, frame in groups:
        for modality in modalities:
            values = frame[modality].to_numpy()
            sem = values.std(ddof=1) / np.sqrt(len(values)) if len(values) > 1 else float("nan")
            rows.append(
                {
                    "modality": modality,
                    "true_class": name,
                    "n": len(values),
                    "mean_drop": float(values.mean()),
                    "stderr": float(sem),
                }
            )
    return pd.DataFrame(rows)


def contribution_markdown(table: pd.DataFrame, split: str) -> str:
    lines = [
        f"# Modality contribution ({split} split)",
        "",
        "Drop in the true-class probability when a modality is replaced by its training mean",
        "(mean ± standard error over the samples of each true class).",
        "",
        markdown_table(
            ["modality", "class", "n", "mean drop", "± s.e."],
            [
                [r.modality, r.true_class, r.n, f"{r.mean_drop:+.3f}", f"{r.stderr:.3f}"]
                for r in table.itertuples()
            ],
            "llrrr",
        ),
    ]
    return "\n".join(lines) + "\n"


def contribution_figure(table: pd.DataFrame, path: Path, split: str) -> Path:
    """Grouped bars: for each class (and all), one bar per modality with its standard error."""
    classes = list(dict.fromkeys(table["true_class"]))
    modalities = list(dict.fromkeys(table["modality"]))
    width = 0.8 / len(modalities)
    fig, ax = plt.subplots(figsize=(1.6 + 1.4 * len(classes), 4.2))
    for i, modality in enumerate(modalities):
        rows = table[table.modality == modality].set_index("true_class").loc[classes]
        ax.bar(
            np.arange(len(classes)) + (i - (len(modalities) - 1) / 2) * width,
            rows.mean_drop,
            width,
            yerr=np.nan_to_num(rows.stderr),
            capsize=3,
            label=modality,
        )
    ax.axhline(0, color="black", lw=0.8)
    ax.set_xticks(range(len(classes)), classes)
    ax.set(
        ylabel="drop in true-class probability",
        title=f"{split}: modality ablation (replaced by training mean)",
    )
    ax.legend(title="modality")
    ax.grid(axis="y", alpha=0.3)
    return save_figure(fig, path)


def weights_figure(
    weights: pd.DataFrame, class_names: Sequence[str], path: Path, fusion: str
) -> Path:
    """Per-sample modality weights, one box per modality within each true class."""
    modalities = [c for c in weights.columns if c != "label"]
    classes = sorted(weights.label.unique())
    width = 0.8 / len(modalities)
    fig, ax = plt.subplots(figsize=(1.6 + 1.5 * len(classes), 4.2))
    for i, modality in enumerate(modalities):
        positions = np.arange(len(classes)) + (i - (len(modalities) - 1) / 2) * width
        data = [weights[weights.label == c][modality].to_numpy() for c in classes]
        box = ax.boxplot(
            data,
            positions=positions,
            widths=width * 0.9,
            patch_artist=True,
            medianprops={"color": "black"},
        )
        color = f"C{i}"
        for patch in box["boxes"]:
            patch.set(facecolor=color, alpha=0.6)
        ax.plot([], [], color=color, lw=8, alpha=0.6, label=modality)
    ax.set_xticks(range(len(classes)), [class_names[c] for c in classes])
    ax.set(
        ylabel="modality weight", ylim=(-0.02, 1.02), title=f"Per-sample modality weights, {fusion}"
    )
    ax.legend(title="modality")
    ax.grid(axis="y", alpha=0.3)
    return save_figure(fig, path)
