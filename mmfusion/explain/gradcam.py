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
    """The classifier seen as a function of one modality's tensor, the others fixed (and absent
    where `present` says so)."""

    def __init__(
        self,
        model: nn.Module,
        modality: str,
        fixed: dict[str, Tensor],
        present: dict[str, Tensor] | None = None,
    ) -> None:
        super().__init__()
        self.model = model
        self.modality = modality
        self.fixed = fixed
        self.present = present

    def forward(self, x: Tensor) -> Tensor:
        return self.model({**self.fixed, self.modality: x}, self.present)


#: Grad-CAM needs a feature map at least this wide to localise anything: at 32 px a ResNet-18's
#: last stage is 1 x 1 (one number per channel), so its map would be flat.
MIN_CAM_GRID = 4


def cam_layer(encoder: nn.Module, branch: nn.Module, example: Tensor) -> tuple[nn.Module, int]:
    """The deepest spatial stage of `encoder` whose map is at least MIN_CAM_GRID wide when
    `branch` runs on `example` (`encoder.stages()`), and that
    map's width: the Grad-CAM grid, which sets how sharp a map can be."""
    candidates = encoder.stages()
    sizes: dict[nn.Module, int] = {}

    def record(module: nn.Module, _: object, out: Tensor) -> None:
        sizes[module] = min(out.shape[-2:])

    hooks = [m.register_forward_hook(record) for m in candidates]
    try:
        with torch.no_grad():
            branch(example)
    finally:
        for hook in hooks:
            hook.remove()
    wide = [m for m in candidates if sizes.get(m, 0) >= MIN_CAM_GRID]
    layer = wide[-1] if wide else candidates[0]
    return layer, sizes.get(layer, 0)


class ContrastTarget:
    """Evidence for class `target` over class `reference`: the difference of their logits.

    Features that raise every logit alike (a chest's outline, the lungs) cancel, so the map shows
    what tells this class from the reference, e.g. a disease from healthy.
    """

    def __init__(self, target: int, reference: int) -> None:
        self.target = target
        self.reference = reference

    def __call__(self, output: Tensor) -> Tensor:
        return output[..., self.target] - output[..., self.reference]


def cam_targets(classes: Sequence[int], reference: int | None) -> list:
    """Grad-CAM targets: each class contrasted with `reference`; the plain logit where there is
    no reference or the class is the reference itself (nothing to contrast it with)."""
    return [
        ClassifierOutputTarget(int(c))
        if reference is None or int(c) == reference
        else ContrastTarget(int(c), reference)
        for c in classes
    ]


def branch_cams(
    model: nn.Module,
    inputs: dict[str, Tensor],
    targets: Sequence[int],
    reference: int | None = None,
    present: dict[str, Tensor] | None = None,
) -> tuple[dict[str, np.ndarray], dict[str, int]]:
    """{modality: (B, H, W) Grad-CAM maps in [0, 1]} for the given target classes (contrasted
    with class `reference` when given), and {modality: width of the feature grid behind them}.
    With `present` (the model's presence masks), a modality absent from every sample has no map.
    """
    cams, grids = {}, {}
    with torch.inference_mode(False), torch.enable_grad():
        inputs = {m: x.clone() for m, x in inputs.items()}  # normal tensors, not inference ones
        for modality in inputs:
            if present is not None and modality in present and not present[modality].any():
                continue
            fixed = {m: x for m, x in inputs.items() if m != modality}
            branch = BranchModel(model, modality, fixed, present)
            encoder = model.net.encoder_for(modality)
            layer, grids[modality] = cam_layer(encoder, branch, inputs[modality])
            with GradCAM(branch, [layer]) as cam:
                cams[modality] = cam(
                    inputs[modality].requires_grad_(True), cam_targets(targets, reference)
                )
    return cams, grids


def _rgb(array: np.ndarray) -> np.ndarray:
    low, high = float(array.min()), float(array.max())
    grey = (array - low) / (high - low) if high > low else np.zeros_like(array)
    return np.repeat(grey[..., None], 3, axis=-1).astype(np.float32)


def overlay(array: np.ndarray, cam: np.ndarray) -> np.ndarray:
    """An (H, W) input, min-max scaled to grey, with its Grad-CAM map as a heat map: RGB uint8."""
    return show_cam_on_image(_rgb(array), cam, use_rgb=True)


def gradcam_figure(
    inputs: dict[str, np.ndarray],
    cams: dict[str, np.ndarray],
    labels: Sequence[int],
    preds: Sequence[int],
    class_names: Sequence[str],
    path: Path,
    shared_encoder: bool,
    contrast_class: str | None = None,
) -> Path:
    """Rows: samples; columns: modalities; each cell the input with its Grad-CAM overlaid."""
    modalities = list(inputs)
    rows, cols = len(labels), len(modalities)
    fig, axes = plt.subplots(rows, cols, figsize=(2.6 * cols + 0.4, 2.5 * rows), squeeze=False)
    for row in range(rows):
        for col, modality in enumerate(modalities):
            ax = axes[row, col]
            shown = overlay(inputs[modality][row], cams[modality][row])
            if modality == "cough":
                ax.imshow(shown, origin="lower", aspect="auto")
            else:
                ax.imshow(shown)
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
    versus = f" vs {contrast_class}" if contrast_class else ""
    fig.suptitle(f"Grad-CAM: predicted class{versus}, per branch{note}", fontsize=12)
    return save_figure(fig, path)
