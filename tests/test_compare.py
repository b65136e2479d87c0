"""The comparison report: its statistics, and a tiny multirun read back from MLflow."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torchmetrics.functional.classification import (
    multiclass_accuracy,
    multiclass_auroc,
    multiclass_calibration_error,
    multiclass_f1_score,
)

from conftest import folder_job, make_tree, mlflow_runs, run_ok
from mmfusion.evaluation.statistics import (
    bootstrap_ci,
    combine_replicate_pvalues,
    holm_adjust,
    mcnemar_pvalue,
    run_metrics,
)

TINY = [
    "backbone=simple_cnn",
    "trainer.max_epochs=1",
    "data.decoding.image_size=16",
    "data.batch_size=4",
    "data.decode_workers=1",
]


def predictions(n: int, classes: int, signal: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, n)
    logits = rng.normal(size=(n, classes))
    logits[np.arange(n), labels] += signal
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    return labels, probs.astype(np.float32)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_metrics_are_the_ones_the_runs_log(seed):
    labels, probs = predictions(150, 4, 1.0 + seed, seed)
    ours = run_metrics(labels, probs)
    p, y = torch.tensor(probs), torch.tensor(labels)
    theirs = {
        "acc": multiclass_accuracy(p, y, 4, average="micro"),
        "f1": multiclass_f1_score(p, y, 4, average="macro"),
        "auroc": multiclass_auroc(p, y, 4, average="macro"),
        "ece": multiclass_calibration_error(p, y, 4, n_bins=15),
    }
    for name, value in theirs.items():
        assert ours[name] == pytest.approx(float(value), abs=1e-6), name


def test_bootstrap_ci_brackets_the_estimate_and_narrows_with_more_patients():
    widths = []
    for n in (60, 600):
        labels, probs = predictions(n, 3, 1.5, 0)
        replicates = np.stack([probs, probs * 0.8 + 0.2 / 3])  # same ranking, other calibration
        for metric in ("acc", "f1", "auroc", "ece"):
            low, high = bootstrap_ci(labels, replicates, metric, n_resamples=500)
            mean = np.mean([run_metrics(labels, r)[metric] for r in replicates])
            assert low <= mean <= high, metric
        low, high = bootstrap_ci(labels, replicates, "acc", n_resamples=500)
        widths.append(high - low)
    assert widths[1] < widths[0] / 2


def test_mcnemar_separates_a_real_difference_from_noise():
    rng = np.random.default_rng(0)
    right = rng.random(200) < 0.9
    same_p, _, _ = mcnemar_pvalue(right, right.copy())
    assert same_p == 1.0
    worse = right & (rng.random(200) < 0.6)
    p, best_only, other_only = mcnemar_pvalue(right, worse)
    assert p < 1e-6 and best_only > 0 and other_only == 0
    assert combine_replicate_pvalues([0.01]) == 0.01
    assert combine_replicate_pvalues([0.01, 0.03]) == pytest.approx(0.04)
    assert combine_replicate_pvalues([0.9, 0.8]) == 1.0
    assert holm_adjust([0.01, 0.04]) == pytest.approx([0.02, 0.04])


@pytest.mark.slow
def test_multirun_report_equals_the_mlflow_runs(tmp_path):
    tree = make_tree(tmp_path / "tree", per_split={"train": 4, "valid": 2, "test": 5})
    sweep = ["fusion=early", "modality=ct,all", "seed=1,2"]
    run_ok(folder_job(tree, *TINY, *sweep, multirun=True), tmp_path)
    client, runs = mlflow_runs(tmp_path)
    parents = [r for r in runs if "mmfusion.sweep_dir" in r.data.tags]
    children = [r for r in runs if r not in parents]
    assert len(parents) == 1 and len(children) == 4
    parent = parents[0]
    assert {r.data.tags.get("mlflow.parentRunId") for r in children} == {parent.info.run_id}
    assert parent.info.status == "FINISHED"
    logged = [a.path for a in client.list_artifacts(parent.info.run_id, "comparison")]
    assert "comparison/comparison.md" in logged and "comparison/comparison.png" in logged

    sweep_dir = parent.data.tags["mmfusion.sweep_dir"]
    report = pd.read_csv(f"{sweep_dir}/comparison/comparison.csv")
    assert sorted(report["configuration"]) == ["modality=all", "modality=ct"]
    for _, row in report.iterrows():
        modality = row["configuration"].split("=")[1]
        mine = [r for r in children if r.data.tags["modality"] == modality]
        assert row["runs"] == 2
        for metric in ("acc", "f1", "auroc"):
            values = [r.data.metrics[f"test/{metric}"] for r in mine]
            assert row[f"{metric}_mean"] == pytest.approx(np.mean(values), abs=1e-4)
            assert row[f"{metric}_ci_low"] <= row[f"{metric}_ci_high"]
    assert set(report["verdict"]) <= {"reference", "significant", "n.s."}
    text = Path(f"{sweep_dir}/comparison/comparison.md").read_text()
    for needle in ("McNemar", "bootstrap", "seed: 1, 2", "test patients: 10", "equal the logged"):
        assert needle in text, needle

    again = [f"multirun_dir={sweep_dir}", f"out={tmp_path / 'again'}", "log=false"]
    run_ok(["mmfusion.compare", *again, "n_resamples=500"], tmp_path, timeout=300)
    again = pd.read_csv(tmp_path / "again" / "comparison.csv")
    assert np.allclose(again["acc_mean"], report["acc_mean"])
