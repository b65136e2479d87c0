"""One patient's files through a trained model: class probabilities (exactly `Predictor.predict`),
a Grad-CAM overlay per present modality and each present modality's contribution.

Grad-CAM and the contributions are computed from the tensors `Predictor.decode` feeds the
model, as the training run's explanations are (`mmfusion.explain`): the map explains the
predicted class against the contrast class (the data's healthy class) where the run set one;
a contribution is the drop in the predicted class's probability when the modality is replaced
by its training mean; fusions that weight modalities (attention, gated, late) add the weights.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from omegaconf import OmegaConf
from PIL import Image

from mmfusion.evaluation.figures import MODALITY_TITLES
from mmfusion.explain import ablation, gradcam
from mmfusion.serving.predictor import Files, Predictor

SHOWN_SIZE = 256  # pixels of an overlay on the page


@dataclass
class Analysis:
    probabilities: dict[str, float]
    overlays: list[tuple[np.ndarray, str]] = field(default_factory=list)  # (RGB, caption)
    contributions: pd.DataFrame = field(default_factory=pd.DataFrame)
    missing: list[str] = field(default_factory=list)

    @property
    def prediction(self) -> str:
        return max(self.probabilities, key=self.probabilities.__getitem__)


def contrast_class(predictor: Predictor) -> str | None:
    """The class Grad-CAM contrasts with, as in the training run's explanations."""
    config = OmegaConf.create(dict(predictor.model.hparams.run_config))
    name = OmegaConf.select(config, "callbacks.explain.contrast_class", default=None)
    return name if name in predictor.class_names else None


def analyse(predictor: Predictor, files: Files, explain: bool = True) -> Analysis:
    """Probabilities of one patient and, with `explain`, the Grad-CAM overlays and contributions."""
    probs = predictor.predict([files])[0]
    result = Analysis(
        probabilities={c: float(p) for c, p in zip(predictor.class_names, probs, strict=True)},
        missing=[m for m in predictor.modalities if not files.get(m)],
    )
    if not explain:
        return result
    inputs, present = predictor.decode([files])
    predicted = int(probs.argmax())
    reference = contrast_class(predictor)
    reference_index = None if reference is None else predictor.class_names.index(reference)
    cams, _ = gradcam.branch_cams(predictor.model, inputs, [predicted], reference_index, present)
    versus = f" vs {reference}" if reference is not None and reference_index != predicted else ""
    for modality, cam in cams.items():
        shown = gradcam.overlay(inputs[modality][0, 0].numpy(), cam[0])
        picture = Image.fromarray(shown).resize((SHOWN_SIZE, SHOWN_SIZE), Image.BILINEAR)
        caption = f"{MODALITY_TITLES.get(modality, modality)}: Grad-CAM of {result.prediction}"
        result.overlays.append((np.asarray(picture), caption + versus))
    drops, weights = ablation.probability_drops(
        predictor.model, inputs, torch.tensor([predicted]), present
    )
    order = list(getattr(predictor.model.net, "modalities", predictor.modalities))
    rows = []
    for modality in predictor.modalities:
        row = {"modality": modality, "given": modality not in result.missing}
        row["drop in P(prediction) without it"] = (
            round(float(drops[modality][0]), 4) if modality in drops else None
        )
        if weights is not None:
            row["fusion weight"] = round(float(weights[0, order.index(modality)]), 4)
        rows.append(row)
    result.contributions = pd.DataFrame(rows)
    return result
