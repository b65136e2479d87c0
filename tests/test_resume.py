"""Nothing lost on kill or crash: atomic checkpoints, exact resume, honest MLflow statuses."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from mlflow.tracking import MlflowClient

from conftest import make_tree, run_cli
from mmfusion.errors import ConfigError
from mmfusion.models.checkpoint import read_checkpoint
from mmfusion.training.checkpointing import SafeCheckpointIO, random_state, set_random_state
from mmfusion.training.resume import run_dir

RUN = [
    "backbone=simple_cnn",
    "fusion=intermediate",
    "model.modality_dropout=0.3",  # consumes random numbers every step
    "data.decoding.image_size=16",
    "data.batch_size=2",
    "data.decode_workers=1",
    "trainer.max_epochs=3",
    "callbacks.early_stopping=null",
    "callbacks.robustness.noise_levels=[0.0,0.5]",
]


def start(args: list[str], cwd: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "mmfusion", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=(cwd / "stderr.txt").open("w"),
    )


def wait_for(path_glob: str, root: Path, process: subprocess.Popen, timeout: float = 300) -> Path:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = list(root.glob(path_glob))
        if found:
            return found[0]
        assert process.poll() is None, (root / "stderr.txt").read_text()[-3000:]
        time.sleep(0.02)
    raise AssertionError(f"{path_glob} never appeared")


def only_run(workdir: Path):
    client = MlflowClient(f"sqlite:///{workdir}/mlflow.db")
    (run,) = client.search_runs([client.get_experiment_by_name("mmfusion").experiment_id])
    return client, run


@pytest.mark.slow
def test_sigkilled_run_resumes_into_the_same_mlflow_run_with_identical_results(tmp_path):
    tree = make_tree(tmp_path / "tree", per_split={"train": 16, "valid": 3, "test": 3})
    args = ["data=folder", f"data.root={tree}", *RUN]
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    straight.mkdir(), killed.mkdir()
    result = run_cli(["mmfusion", *args], cwd=straight)
    assert result.returncode == 0, result.stderr[-3000:]

    process = start(args, killed)
    last = wait_for("outputs/train/runs/*/checkpoints/last.ckpt", killed, process)
    process.send_signal(signal.SIGKILL)  # epoch 1 is running: no chance to clean up
    process.wait(timeout=60)
    assert read_checkpoint(last)["epoch"] == 0
    _, run = only_run(killed)
    assert run.info.status == "RUNNING" and "test/acc" not in run.data.metrics

    result = run_cli(["mmfusion", *args, "resume=true"], cwd=killed)
    assert result.returncode == 0, result.stderr[-3000:]
    client, resumed = only_run(killed)  # still one run: the same one, now finished
    assert resumed.info.run_id == run.info.run_id and resumed.info.status == "FINISHED"
    assert [m.step for m in client.get_metric_history(run.info.run_id, "val/acc")] == sorted(
        {m.step for m in client.get_metric_history(run.info.run_id, "val/acc")}
    )
    assert len(client.get_metric_history(run.info.run_id, "val/acc")) == 3
    (run_dir_,) = (killed / "outputs/train/runs").iterdir()  # resumed in place, no new dir
    expected = json.loads(next(straight.rglob("metrics.json")).read_text())
    got = json.loads((run_dir_ / "metrics.json").read_text())
    tests = {k: v for k, v in expected.items() if k.startswith("test/")}
    assert tests and {k: got[k] for k in tests} == tests
    assert resumed.data.metrics["test/acc"] == expected["test/acc"]
    assert {"robust/without_ct/acc", "robust/noise_all/relative_robustness"} <= set(
        resumed.data.metrics
    )


@pytest.mark.slow
def test_sigterm_saves_a_checkpoint_and_marks_the_run_killed(tmp_path):
    tree = make_tree(tmp_path / "tree", per_split={"train": 16, "valid": 2, "test": 2})
    process = start(["data=folder", f"data.root={tree}", *RUN, "trainer.max_epochs=50"], tmp_path)
    wait_for("outputs/train/runs/*/checkpoints/last.ckpt", tmp_path, process)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=120) == 128 + signal.SIGTERM
    (saved,) = tmp_path.glob("outputs/train/runs/*/checkpoints/interrupted.ckpt")
    assert "state_dict" in read_checkpoint(saved)
    _, run = only_run(tmp_path)
    assert run.info.status == "KILLED", (tmp_path / "stderr.txt").read_text()[-3000:]


@pytest.mark.slow
def test_an_exception_marks_the_run_failed(tmp_path):
    tree = make_tree(tmp_path / "tree", per_split={"train": 2, "valid": 1, "test": 1})
    result = run_cli(
        # passes the option check, fails when the optimizer is built (inside the run)
        ["mmfusion", "data=folder", f"data.root={tree}", *RUN, "+model.optimizer.betas=[2,0.9]"],
        cwd=tmp_path,
    )
    assert result.returncode != 0 and "Invalid beta parameter" in result.stderr
    _, run = only_run(tmp_path)
    assert run.info.status == "FAILED"


def test_resume_true_finds_the_newest_run_of_the_same_model(tmp_path):
    runs = tmp_path / "runs"
    for name in (
        "2026-01-01_10-00-00_early-resnet18-all",
        "2026-01-02_10-00-00_early-resnet18-all",
        "2026-01-03_10-00-00_late-resnet18-all",
        "2026-01-04_10-00-00_early-resnet18-all",
    ):
        (runs / name / "checkpoints").mkdir(parents=True)
    for name in (
        "2026-01-01_10-00-00_early-resnet18-all",
        "2026-01-02_10-00-00_early-resnet18-all",
        "2026-01-03_10-00-00_late-resnet18-all",
    ):
        (runs / name / "checkpoints" / "last.ckpt").write_bytes(b"x")
    fresh = "2026-02-01_00-00-00_early-resnet18-all"
    assert run_dir(False, None, str(runs), fresh) == str(runs / fresh)
    # the 01-04 run has no checkpoint yet, 01-03 is another model
    expected = str((runs / "2026-01-02_10-00-00_early-resnet18-all").resolve())
    assert run_dir(True, None, str(runs), fresh) == expected
    assert run_dir(False, "last", str(runs), fresh) == expected
    assert run_dir(str(runs / "2026-01-01_10-00-00_early-resnet18-all"), None, str(runs), fresh)
    with pytest.raises(ConfigError, match="resume=true: no earlier intermediate-resnet18-all"):
        run_dir(True, None, str(runs), "2026-02-01_00-00-00_intermediate-resnet18-all")
    with pytest.raises(ConfigError, match="no such run directory"):
        run_dir(str(tmp_path / "nope"), None, str(runs), fresh)


def test_a_failed_checkpoint_write_leaves_the_previous_file_whole(tmp_path):
    io = SafeCheckpointIO()
    path = tmp_path / "last.ckpt"
    io.save_checkpoint({"epoch": 1, "w": torch.ones(3)}, path)

    class Unsaveable:
        def __reduce__(self):
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        io.save_checkpoint({"epoch": 2, "bad": Unsaveable()}, path)
    assert io.load_checkpoint(path)["epoch"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]


def test_random_state_survives_a_weights_only_checkpoint(tmp_path):
    import random

    import numpy as np

    torch.manual_seed(3), np.random.seed(3), random.seed(3)
    SafeCheckpointIO().save_checkpoint({"rng": random_state()}, tmp_path / "c.ckpt")
    expected = (torch.rand(3), np.random.rand(3), random.random())
    set_random_state(read_checkpoint(tmp_path / "c.ckpt")["rng"])
    got = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(got[0], expected[0]) and (got[1] == expected[1]).all()
    assert got[2] == expected[2]


def test_resume_and_predict_refuse_a_checkpoint_carrying_code(tmp_path, capsys):
    import pickle

    from mmfusion.serving.predictor import Predictor

    class Payload:
        def __reduce__(self):
            return (print, ("pwned",))

    evil = tmp_path / "last.ckpt"
    evil.write_bytes(pickle.dumps({"state_dict": {}, "epoch": 3, "x": Payload()}))
    with pytest.raises(ConfigError, match="refusing to load"):
        SafeCheckpointIO().load_checkpoint(evil)
    with pytest.raises(ConfigError, match="refusing to load"):
        Predictor(evil)
    assert "pwned" not in capsys.readouterr().out


def test_resuming_a_missing_run_dir_is_one_line(tmp_path):
    result = run_cli(["mmfusion", f"resume={tmp_path}/gone"], cwd=tmp_path)
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last == f"mmfusion: error: resume={tmp_path}/gone: no such run directory"
    assert "Traceback" not in result.stderr


def test_last_link_is_swapped_in_place_and_a_dangling_one_falls_back_to_the_newest_epoch(tmp_path):
    from types import SimpleNamespace

    from mmfusion.training.checkpointing import ModelCheckpoint
    from mmfusion.training.resume import latest_checkpoint

    folder = tmp_path / "checkpoints"
    folder.mkdir()
    last = folder / "last.ckpt"
    trainer = SimpleNamespace(is_global_zero=True, strategy=SimpleNamespace(barrier=lambda: None))
    first, second = folder / "epoch00.ckpt", folder / "epoch03.ckpt"
    first.write_bytes(b"epoch 0")
    ModelCheckpoint._link_checkpoint(trainer, str(first), str(last))
    assert latest_checkpoint(tmp_path) == last and last.read_bytes() == b"epoch 0"
    # Lightning writes the new best and deletes the old one before it relinks last.ckpt
    second.write_bytes(b"epoch 3")
    first.unlink()
    assert latest_checkpoint(tmp_path) == second
    ModelCheckpoint._link_checkpoint(trainer, str(second), str(last))
    assert last.is_symlink() and last.read_bytes() == b"epoch 3"
    assert sorted(p.name for p in folder.iterdir()) == ["epoch03.ckpt", "last.ckpt"]
