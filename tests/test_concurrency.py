"""Four parallel sweep jobs (joblib launcher) write to one MLflow store without losing anything."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

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


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def mlflow_server(tmp_path: Path) -> Iterator[str]:
    """A real `mlflow server` on 127.0.0.1 and a free port; stopped after the test."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = (tmp_path / "server.log").open("w")
    server = subprocess.Popen(
        [
            sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
            "--backend-store-uri", f"sqlite:///{tmp_path}/server.db",
            "--default-artifact-root", str(tmp_path / "server-artifacts"), "--workers", "1",
        ],
        cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ),
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            assert server.poll() is None, (tmp_path / "server.log").read_text()[-2000:]
            assert time.monotonic() < deadline, "mlflow server did not start"
            time.sleep(0.5)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


@pytest.mark.slow
def test_four_parallel_jobs_share_one_mlflow_server(tmp_path, mlflow_server):
    tree = make_tree(tmp_path / "tree", per_split={"train": 3, "valid": 2, "test": 2})
    result = run_cli(
        [*SWEEP, "data=folder", f"data.root={tree}", f"logger.mlflow.tracking_uri={mlflow_server}"],
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert_nothing_lost(MlflowClient(mlflow_server))
    assert not (tmp_path / "mlflow.db").exists()  # everything went through the server
