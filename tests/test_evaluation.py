"""Evaluation artifacts: their numbers, their presence after a run, and re-evaluation."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch
from mlflow.tracking import MlflowClient

from conftest import folder_job, make_tree, only_run_dir, run_cli, run_ok
from mmfusion.evaluation import summary

CLASSES = ("Healthy", "Pneumonia", "covid")


def test_calibration_of_confident_predictions():
    labels = torch.tensor([0, 1, 2, 0])
    right = torch.eye(3)[labels]
    assert summary.reliability(right, labels).ece == pytest.approx(0.0, abs=1e-6)
    # always 0.8 confident and right half of the time: ECE = |0.8 - 0.5|
    probs = torch.tensor([[0.8, 0.1, 0.1]] * 4)
    rel = summary.reliability(probs, labels)
    assert rel.ece == pytest.approx(0.3, abs=1e-6)
    assert rel.count.sum() == 4 and rel.count[rel.edges[1:] >= 0.8].sum() == 4


def test_classification_report_counts_per_class():
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    predicted = torch.tensor([0, 1, 1, 1, 2, 0])
    report = summary.classification_report(torch.eye(3)[predicted], labels, list(CLASSES))
    assert report["Healthy"] == pytest.approx(
        {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2}
    )
    assert report["Pneumonia"]["precision"] == pytest.approx(2 / 3)
    assert report["covid"]["recall"] == pytest.approx(0.5)
    assert report["accuracy"]["value"] == pytest.approx(4 / 6)
    markdown = summary.report_markdown(report, "t")
    assert "| Pneumonia | 0.667 | 1.000 | 0.800 | 2 |" in markdown


def test_roc_of_a_perfect_ranking_has_unit_area():
    labels = torch.tensor([0, 1, 2, 0, 1, 2])
    probs = torch.eye(3)[labels] * 0.7 + 0.1
    assert [c.area for c in summary.roc_curves(probs, labels)] == pytest.approx([1.0] * 3)
    assert [c.area for c in summary.pr_curves(probs, labels)] == pytest.approx([1.0] * 3)


EVALUATION_FILES = [
    "classification_report_test.json",
    "classification_report_test.md",
    "calibration_test.json",
    "roc_auc_test.json",
    "confusion_test.png",
    "roc_test.png",
    "pr_test.png",
    "reliability_test.png",
    "samples_test.png",
]
EXPLAIN_FILES = [
    "gradcam_test.png",
    "gradcam_test.npz",
    "modality_contribution_test.csv",
    "modality_contribution_test.md",
    "modality_contribution_test.png",
    "modality_weights_test.csv",
    "modality_weights_test.png",
]


@pytest.mark.slow
def test_run_writes_every_artifact_and_evaluate_reproduces_its_test_metrics(tmp_path):
    tree = make_tree(
        tmp_path / "tree", per_split={"train": 4, "valid": 2, "test": 3}, classes=CLASSES
    )
    common = ["data.decode_workers=1"]
    model = ["backbone=simple_cnn", "fusion=attention"]
    tiny = ["trainer.max_epochs=1", "data.decoding.image_size=16", *common]
    run_ok(folder_job(tree, *model, *tiny), tmp_path)
    run_dir = only_run_dir(tmp_path)
    for name in EVALUATION_FILES:
        assert (run_dir / "evaluation" / name).stat().st_size > 0, name
    for name in EXPLAIN_FILES:
        assert (run_dir / "explain" / name).stat().st_size > 0, name
    predictions = pd.read_csv(run_dir / "test_predictions.csv")
    assert list(predictions.columns) == [
        "sample_id",
        "label",
        "label_name",
        "pred",
        "pred_name",
        *[f"prob_{c}" for c in CLASSES],
        "file_ct",
        "file_cxr",
        "file_cough",
    ]
    assert len(predictions) == 9
    weights = pd.read_csv(run_dir / "explain" / "modality_weights_test.csv")
    assert (weights[["ct", "cxr", "cough"]].sum(axis=1) - 1).abs().max() < 1e-5
    trained = json.loads((run_dir / "metrics.json").read_text())
    assert 0 <= trained["test/ece"] <= 1

    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    experiment = client.get_experiment_by_name("mmfusion")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.data.metrics["test/ece"] == pytest.approx(trained["test/ece"])
    logged = {a.path for a in client.list_artifacts(run.info.run_id, "evaluation")}
    assert {f"evaluation/{n}" for n in EVALUATION_FILES} <= logged
    logged = {a.path for a in client.list_artifacts(run.info.run_id, "explain")}
    assert {f"explain/{n}" for n in EXPLAIN_FILES} <= logged

    (ckpt,) = (run_dir / "checkpoints").glob("epoch*.ckpt")
    run_ok(["mmfusion.evaluate", f"ckpt_path={ckpt}"], tmp_path)
    (eval_dir,) = (tmp_path / "outputs" / "evaluate" / "runs").iterdir()
    again = json.loads((eval_dir / "metrics.json").read_text())
    for name in ("test/acc", "test/f1", "test/auroc", "test/ece", "test/loss"):
        assert again[name] == pytest.approx(trained[name], abs=1e-5), name
    assert pd.read_csv(eval_dir / "test_predictions.csv").equals(predictions)
    runs = client.search_runs([experiment.experiment_id], "tags.split = 'test'")
    assert [r.data.tags["source_checkpoint"] for r in runs] == [str(ckpt)]
    assert runs[0].data.metrics["test/acc"] == pytest.approx(trained["test/acc"])


@pytest.mark.slow
def test_evaluate_names_a_missing_checkpoint(tmp_path):
    result = run_cli(["mmfusion.evaluate", f"ckpt_path={tmp_path}/nope.ckpt"], cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f"mmfusion.evaluate: error: checkpoint {tmp_path}/nope.ckpt does not exist"
    )
