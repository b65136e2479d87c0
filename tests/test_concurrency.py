"""Four parallel sweep jobs (joblib launcher) write to one MLflow store without losing anything."""

from __future__ import annotations

import pytest
from mlflow.tracking import MlflowClient

from conftest import make_tree, run_cli
from mmfusion.tracking.runs import PARENT_TAG, SWEEP_TAG

EPOCHS = 2
SWEEP = [
    "mmfusion",
    "-m",
    "hydra/launcher=joblib",
    "hydra.launcher.n_jobs=4",
    "backbone=simple_cnn",
    "data.decoding.image_size=16",
    "data.batch_size=4",
    "data.decode_workers=1",
    f"trainer.max_epochs={EPOCHS}",
    "trainer.log_every_n_steps=1",
    "callbacks.early_stopping=null",
    "callbacks.robustness=null",
    "callbacks.progress_bar=null",
    "seed=1,2,3,4",
]


def assert_nothing_lost(client: MlflowClient) -> None:
    experiment = client.get_experiment_by_name("mmfusion")
    every = client.search_runs([experiment.experiment_id])
    parents = [r for r in every if SWEEP_TAG in r.data.tags]  # the multirun's own run
    runs = [r for r in every if r not in parents]
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    assert {r.data.tags[PARENT_TAG] for r in runs} == {parents[0].info.run_id}
    assert sorted(r.data.params["seed"] for r in runs) == ["1", "2", "3", "4"]
    assert all(r.info.status == "FINISHED" for r in runs)
    keys = {frozenset(r.data.metrics) for r in runs}
    assert len(keys) == 1, "runs logged different metrics"
    (names,) = keys
    assert {"train/loss", "val/acc", "test/acc", "test/auroc"} <= names
    for run in runs:
        assert len(client.get_metric_history(run.info.run_id, "val/acc")) == EPOCHS
        artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
        assert {"metrics.json", "checkpoints", "hydra"} <= artifacts


@pytest.mark.slow
def test_four_parallel_jobs_share_one_sqlite_store(tmp_path):
    tree = make_tree(tmp_path / "tree", per_split={"train": 3, "valid": 2, "test": 2})
    result = run_cli([*SWEEP, "data=folder", f"data.root={tree}"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert_nothing_lost(MlflowClient(f"sqlite:///{tmp_path}/mlflow.db"))


@pytest.mark.slow
def test_four_parallel_jobs_share_one_mlflow_server(tmp_path, mlflow_server):
    tree = make_tree(tmp_path / "tree", per_split={"train": 3, "valid": 2, "test": 2})
    result = run_cli(
        [
            *SWEEP,
            "data=folder",
            f"data.root={tree}",
            f"logger.mlflow.tracking_uri={mlflow_server.url}",
        ],
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert_nothing_lost(MlflowClient(mlflow_server.url))
    assert not (tmp_path / "mlflow.db").exists()  # everything went through the server
