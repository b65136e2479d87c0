"""Robustness evaluation: modality removal and noise curves measure what they claim."""

from __future__ import annotations

import json

import torch
from torch import nn

from mmfusion.evaluation.robustness import (
    curve_area,
    flat_metrics,
    robustness_report,
    summary_table,
)


class ReadsOnlyCT(nn.Module):
    """A stand-in classifier whose answer is the sign of the mean CT pixel (CXR is ignored)."""

    device = torch.device("cpu")

    def forward(self, inputs, present=None):
        score = inputs["ct"].mean(dim=(1, 2, 3)) - 0.5
        if present is not None and "ct" in present:
            score = torch.where(present["ct"], score, torch.zeros_like(score))
        return torch.stack([-score, score], dim=1) * 50


def loader(n: int = 40):
    torch.manual_seed(0)
    labels = torch.arange(n) % 2
    ct = 0.5 + (labels.float() * 2 - 1).view(-1, 1, 1, 1) * 0.05 + torch.zeros(n, 1, 8, 8)
    cxr = torch.rand(n, 1, 8, 8)
    return [
        ({"ct": ct[i : i + 10], "cxr": cxr[i : i + 10]}, labels[i : i + 10])
        for i in range(0, n, 10)
    ]


def test_removal_and_noise_hit_only_the_modality_the_model_uses():
    report = robustness_report(ReadsOnlyCT(), loader(), ["ct", "cxr"], [0.0, 0.5, 2.0], seed=0)
    metrics = flat_metrics(report)
    assert report["clean"]["acc"] == 1.0
    assert metrics["robust/without_cxr/acc"] == 1.0
    assert metrics["robust/without_ct/acc"] == 0.5  # a constant answer on balanced classes
    curves = report["noise_curves"]
    assert curves["cxr"]["acc"] == [1.0, 1.0, 1.0] and curves["cxr"]["relative_robustness"] == 1.0
    assert curves["ct"]["acc"][0] == 1.0 and curves["ct"]["acc"][-1] < 0.9
    assert curves["ct"]["relative_robustness"] < 1.0
    assert curves["all"]["acc"] == curves["ct"]["acc"]  # same seeded draw for the CT noise
    assert {r["condition"] for r in report["rows"]} == {"clean", "without", "noise"}


def test_curve_area_is_normalised_over_the_level_range():
    assert curve_area([0.0, 0.5, 1.0], [1.0, 1.0, 1.0]) == 1.0
    assert curve_area([0.0, 2.0], [1.0, 0.0]) == 0.5


def test_summary_table_compares_runs(tmp_path):
    report = robustness_report(ReadsOnlyCT(), loader(), ["ct", "cxr"], [0.0, 2.0], seed=0)
    for name, dropout in (("a", 0.0), ("b", 0.5)):
        run = tmp_path / name
        (run / ".hydra").mkdir(parents=True)
        (run / "robustness.json").write_text(json.dumps(report))
        (run / ".hydra" / "config.yaml").write_text(f"model:\n  modality_dropout: {dropout}\n")
        choices = "hydra:\n  runtime:\n    choices:\n      fusion: early\n"
        (run / ".hydra" / "hydra.yaml").write_text(choices)
    table = summary_table([tmp_path / "b", tmp_path / "a"]).splitlines()
    assert table[0].startswith("| fusion | modality_dropout | clean acc | without ct | without cxr")
    assert (
        table[2]
        == "| early | 0 | 1.000 | 0.500 | 1.000 | "
        + " | ".join(
            f"{report['noise_curves'][n]['relative_robustness']:.3f}" for n in ("ct", "cxr", "all")
        )
        + " |"
    )
    assert table[3].startswith("| early | 0.5 |")
