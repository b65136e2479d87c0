"""Grad-CAM for one modality branch of a multimodal model, the other modalities held fixed."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch
from pytorch_grad_cam import GradCAM
from pytorch_grad_cam.utils.image import show_cam_on_image
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
from torch import Tensor, nn

from mmfusion.evaluation.figures import MODALITY_TITLES, save_figure


class BranchModel(nn.Module):
    """The classifier seen as a function of one modality's tensor, the others fixed."""

    def __init__(self, model: nn.Module, modality: str, fixed: dict[str, Tensor]) -> None:
        super().__init__()
        self.model = model
        self.modality = modality
        self.fixed = fixed

    def forward(self, x: Tensor) -> Tensor:
        return self.model({**self.fixed, self.modality: x})


def branch_encoder(net: nn.Module, modality: str) -> nn.Module:
    """The encoder that reads `modality`: its own one, or the single shared one (early fusion)."""
    for module in net.modules():
        # `out_features` is set on every BackboneFactory encoder, not on heads
        is_dict = isinstance(module, nn.ModuleDict) and modality in module
        if is_dict and hasattr(module[modality], "out_features"):
            return module[modality]
    return net.encoder


def last_feature_layer(encoder: nn.Module) -> nn.Module:
    """The deepest spatial stage: timm's last `feature_info` module, else the last convolution."""
    info = getattr(encoder, "feature_info", None)
    if isinstance(info, list) and info and "module" in info[-1]:
        return encoder.get_submodule(info[-1]["module"])
    convs = [m for m in encoder.modules() if isinstance(m, nn.Conv2d)]
    return convs[-1]


def branch_cams(
    model: nn.Module, inputs: dict[str, Tensor], targets: Sequence[int]
) -> dict[str, np.ndarray]:
    """{modality: (B, H, W) Grad-CAM maps in [0, 1]} for the given target classes."""
    cams = {}
    with torch.inference_mode(False), torch.enable_grad():
        inputs = {m: x.clone() for m, x in inputs.items()}  # normal tensors, not inference ones
        for modality in inputs:
            fixed = {m: x for m, x in inputs.items() if m != modality}
            layer = last_feature_layer(branch_encoder(model.net, modality))
            with GradCAM(BranchModel(model, modality, fixed), [layer]) as cam:
                cams[modality] = cam(
                    inputs[modality].requires_grad_(True),
                    [ClassifierOutputTarget(int(t)) for t in targets],
                )
    return cams


def _rgb(array: np.ndarray) -> np.ndarray:
    low, high = float(array.min()), float(array.max())
    grey = (array - low) / (high - low) if high > low else np.zeros_like(array)
    return np.repeat(grey[..., None], 3, axis=-1).astype(np.float32)


def gradcam_figure(
    inputs: dict[str, np.ndarray],
    cams: dict[str, np.ndarray],
    labels: Sequence[int],
    preds: Sequence[int],
    class_names: Sequence[str],
    path: Path,
    shared_encoder: bool,
) -> Path:
    """Rows: samples; columns: modalities; each cell the input with its Grad-CAM overlaid."""
    modalities = list(inputs)
    rows, cols = len(labels), len(modalities)
    fig, axes = plt.subplots(rows, cols, figsize=(2.6 * cols + 0.4, 2.5 * rows), squeeze=False)
    for row in range(rows):
        for col, modality in enumerate(modalities):
            ax = axes[row, col]
            overlay = show_cam_on_image(_rgb(inputs[modality][row]), cams[modality][row], True)
            if modality == "cough":
                ax.imshow(overlay, origin="lower", aspect="auto")
            else:
                ax.imshow(overlay)
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(MODALITY_TITLES.get(modality, modality), fontsize=11)
        ok = labels[row] == preds[row]
        axes[row, 0].set_ylabel(
            f"true {class_names[labels[row]]}\npred {class_names[preds[row]]}",
            color="darkgreen" if ok else "firebrick",
            fontsize=10,
        )
    note = " (early fusion: one shared map)" if shared_encoder else ""
    fig.suptitle(f"Grad-CAM for the predicted class, per branch{note}", fontsize=12)
    return save_figure(fig, path)
