"""End to end through the CLI: a tiny real training run, read back from its MLflow store."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import folder_job, make_tree, mlflow_runs, run_cli, run_ok

TINY = [
    "backbone=simple_cnn",
    "trainer.max_epochs=2",
    "data.decoding.image_size=16",
    "data.batch_size=4",
    "data.decode_workers=1",
]


@pytest.mark.slow
def test_training_run_is_fully_logged_to_mlflow(tmp_path):
    tree = make_tree(tmp_path / "tree")
    result = run_ok(folder_job(tree, *TINY), tmp_path)
    assert "mmfusion run summary" in result.stdout and "mlflow run id" in result.stdout

    client, runs = mlflow_runs(tmp_path)
    assert len(runs) == 1
    run = runs[0]
    assert run.info.status == "FINISHED"
    assert run.info.run_name == "early-simple_cnn-all"
    assert run.data.params["data/batch_size"] == "4"
    assert run.data.params["fusion/_target_"] == "mmfusion.models.networks.InputFusionNet"
    assert {
        "test/acc",
        "test/f1",
        "test/auroc",
        "test/precision",
        "test/recall",
        "val/acc",
        "train/loss",
    } <= set(run.data.metrics)
    assert len(client.get_metric_history(run.info.run_id, "val/acc")) == 2
    top = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"metrics.json", "test_predictions.csv", "evaluation", "hydra", "checkpoints"} <= top
    assert "hydra/config.yaml" in {a.path for a in client.list_artifacts(run.info.run_id, "hydra")}
    checkpoints = client.list_artifacts(run.info.run_id, "checkpoints")
    assert [Path(a.path).suffix for a in checkpoints] == [".ckpt"]
    run_dirs = list((tmp_path / "outputs" / "train" / "runs").iterdir())
    assert len(run_dirs) == 1 and (run_dirs[0] / "evaluation" / "confusion_test.png").is_file()


@pytest.mark.slow
def test_multirun_gives_one_run_per_job_in_one_experiment(tmp_path):
    tree = make_tree(tmp_path / "tree", per_split={"train": 2, "valid": 1, "test": 1})
    sweep = ["fusion=early,intermediate", "modality=ct,all"]
    run_ok(folder_job(tree, *TINY, "trainer.max_epochs=1", *sweep, multirun=True), tmp_path)
    _, runs = mlflow_runs(tmp_path)
    parent = [r for r in runs if "mmfusion.sweep_dir" in r.data.tags]  # the multirun's own run
    runs = [r for r in runs if r not in parent]
    assert len(parent) == 1
    assert {r.data.tags["mlflow.parentRunId"] for r in runs} == {parent[0].info.run_id}
    assert sorted(r.info.run_name for r in runs) == [
        "early-simple_cnn-all",
        "early-simple_cnn-ct",
        "intermediate-simple_cnn-all",
        "intermediate-simple_cnn-ct",
    ]
    assert all(r.info.status == "FINISHED" for r in runs)


def test_bad_data_root_is_one_line_naming_the_path(tmp_path):
    result = run_cli(folder_job(tmp_path / "missing", *TINY), cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f"mmfusion: error: data root does not exist: {tmp_path}/missing (set data.root=PATH)"
    )
    assert "Traceback" not in result.stderr


def test_healthy_class_missing_from_the_data_is_one_line_naming_the_option(tmp_path):
    tree = make_tree(tmp_path / "tree", per_split={"train": 2, "valid": 1, "test": 1})
    result = run_cli(folder_job(tree, "data.healthy_class=Normal", *TINY), cwd=tmp_path)
    assert result.returncode == 1
    assert (
        result.stderr.strip()
        .splitlines()[-1]
        .startswith("mmfusion: error: data.healthy_class='Normal' is not one of the classes")
    )
    assert "Traceback" not in result.stderr


def test_corrupt_file_via_cli_names_the_file_and_skip_reports_the_count(tmp_path):
    tree = make_tree(tmp_path / "tree", per_split={"train": 2, "valid": 1, "test": 1})
    bad = tree / "train" / "CT" / "covid" / "covidtrain0.png"
    bad.write_bytes(b"not a png")
    one_epoch = folder_job(tree, *TINY, "logger=none", "trainer.max_epochs=1")
    result = run_cli(one_epoch, cwd=tmp_path)
    assert result.returncode == 1
    assert (
        result.stderr.strip()
        .splitlines()[-1]
        .startswith(f"mmfusion: error: cannot read image {bad}")
    )
    result = run_ok([*one_epoch, "data.on_bad_file=skip"], tmp_path)
    assert "skipped 1 unreadable files, dropping 1 patients" in result.stdout + result.stderr


@pytest.mark.slow
def test_a_failing_job_leaves_no_multirun_run_running(tmp_path):
    tree = make_tree(tmp_path / "tree", per_split={"train": 2, "valid": 1, "test": 1})
    roots = f"{tree},{tmp_path}/missing"
    args = folder_job(roots, *TINY, "trainer.max_epochs=1", multirun=True)
    result = run_cli([*args, "logger.mlflow.experiment_name=mmfusion"], cwd=tmp_path)
    assert result.returncode != 0
    _, runs = mlflow_runs(tmp_path)
    assert {r.info.status for r in runs} <= {"FINISHED", "FAILED"}
    (parent,) = [r for r in runs if "mmfusion.sweep_dir" in r.data.tags]
    assert parent.info.status == "FAILED"
