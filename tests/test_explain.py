"""Explanations point at the evidence: Grad-CAM on the synthetic finding regions."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import only_run_dir, run_ok
from mmfusion.explain.localisation import localise, overlap


def test_overlap_scores():
    region = np.zeros((8, 8), dtype=bool)
    region[2:4, 2:4] = True
    on_target = np.where(region, 1.0, 0.0)
    assert overlap(on_target, region) == overlap(on_target * 3, region)
    scores = overlap(on_target, region)
    assert scores.mass == 1.0 and scores.lift == 16.0 and scores.hit
    flat = overlap(np.ones((8, 8)), region)
    assert flat.lift == pytest.approx(1.0)
    elsewhere = np.zeros((8, 8))
    elsewhere[6, 6] = 1.0
    assert not overlap(elsewhere, region).hit
    assert overlap(elsewhere, region, tolerance_px=3).hit


def test_contrast_target_cancels_evidence_that_every_class_shares():
    import torch

    from mmfusion.explain.gradcam import ContrastTarget

    logits = torch.tensor([[5.0, 7.0, 1.0]], requires_grad=True)
    ContrastTarget(target=1, reference=0)(logits).sum().backward()
    assert logits.grad.tolist() == [[-1.0, 1.0, 0.0]]  # a shift of all logits has no effect


def test_a_prediction_of_the_reference_class_is_explained_plainly():
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    from mmfusion.explain.gradcam import ContrastTarget, cam_targets

    healthy, covid = cam_targets([0, 3], reference=0)
    assert type(healthy) is ClassifierOutputTarget
    assert (covid.target, covid.reference) == (3, 0)
    assert all(type(t) is ClassifierOutputTarget for t in cam_targets([0, 3], reference=None))
    assert isinstance(covid, ContrastTarget)


def train_and_localise(tmp_path: Path, modality: str, train: int, epochs: int):
    """Train `modality` alone (every non-healthy image shows its finding; small CNN, 64 px);
    then `mmfusion.explain.localisation` scores the Grad-CAM of "predicted class rather than
    Healthy" of every correctly classified test patient against its finding, grown by half a
    cell of the Grad-CAM grid (4 px here: an 8 x 8 map upsampled to 64 px cannot be sharper)."""
    finding_prob = {"ct": 0.6, "cxr": 0.6, "cough": 0.6, modality: 1.0}
    probs = ",".join(f"{m}:{p}" for m, p in finding_prob.items())
    args = [
        "mmfusion",
        f"data.layout.per_class={{train:{train},valid:10,test:10}}",
        "data.layout.image_size=64",
        f"data.layout.finding_prob={{{probs}}}",
        "data.decoding.image_size=64",
        "data.batch_size=32",
        f"modality={modality}",
        "fusion=intermediate",
        "backbone=simple_cnn",
        f"trainer.max_epochs={epochs}",
        "logger=none",
        "callbacks.early_stopping=null",
        "callbacks.robustness=null",
        "callbacks.explain.ablation=false",
    ]
    run_ok(args, tmp_path)
    run = only_run_dir(tmp_path)
    assert str(np.load(run / "explain" / "gradcam_test.npz")["contrast_class"]) == "Healthy"
    (ckpt,) = (run / "checkpoints").glob("epoch*.ckpt")
    (scores,) = localise(ckpt)
    assert (scores.modality, scores.grid, scores.half_cell) == (modality, 8, 4)
    accuracy = json.loads((run / "metrics.json").read_text())["test/acc"]
    assert len(scores.grown) >= 10, f"too few correct findings to judge (test acc {accuracy:.2f})"
    return ckpt, scores.grown


@pytest.mark.slow
def test_gradcam_puts_most_of_its_mass_on_the_synthetic_ct_finding(tmp_path):
    """Measured when written (seed 42, 26 correct findings): median mass inside 0.64 (0.32 in
    the finding itself), 21 of 26 above one half, 25 hits."""
    ckpt, scores = train_and_localise(tmp_path, "ct", train=60, epochs=8)
    assert np.median([s.mass for s in scores]) > 0.5, scores
    assert np.mean([s.hit for s in scores]) >= 0.75, scores
    (alone,) = localise(ckpt, alone=True)  # findings that no other modality shows
    assert 0 < len(alone.grown) < len(scores)


@pytest.mark.slow
def test_gradcam_points_at_the_synthetic_cxr_finding(tmp_path):
    """CXR maps peak on the finding but spread over the lungs around it: most of their mass is
    NOT inside (README "How well they localise"), so only the maximum and the lift over a flat
    map are required. Measured when written (test acc 0.95, 28 correct findings): 24 hits,
    median lift 2.2, median mass 0.31, no map above one half."""
    _, scores = train_and_localise(tmp_path, "cxr", train=100, epochs=15)
    assert np.mean([s.hit for s in scores]) >= 0.75, scores
    assert np.median([s.lift for s in scores]) >= 1.5, scores


@pytest.mark.parametrize(("size", "stage"), [(32, "layer2"), (64, "layer3"), (128, "layer4")])
def test_gradcam_uses_the_deepest_stage_at_least_4_wide(size, stage):
    """At 32 px a ResNet-18's last stage is 1 x 1: a Grad-CAM map there would be flat."""
    import torch

    from mmfusion.explain.gradcam import cam_layer
    from mmfusion.models.encoders.timm_encoder import TimmEncoder

    encoder = TimmEncoder("resnet18").eval()
    layer, grid = cam_layer(encoder, encoder, torch.zeros(2, 1, size, size))
    assert layer is encoder.body.get_submodule(stage)
    assert grid == 4
