"""Shared fixtures: tiny data trees in the Kaggle layout and composed Hydra configs."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
import soundfile as sf
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict
from PIL import Image

import mmfusion.cli.tool  # noqa: F401  (registers the configs' resolvers, as every entry point does)
from mmfusion.data.decoding.spec import DecodingSpec

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

REPO = Path(__file__).resolve().parent.parent
CONF = REPO / "conf"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
REAL_SAMPLE = REPO.parent / "shared" / "real-sample"
MODALITY_DIRS = {"ct": "CT", "cxr": "CXR", "cough": "Cough sound"}


def write_patient(
    root: Path,
    split: str,
    label: str,
    stem: str,
    rng: np.random.Generator,
    modalities: tuple[str, ...] = ("ct", "cxr", "cough"),
) -> dict[str, Path]:
    """One patient's files: a PNG per image modality, a short WAV for cough."""
    files = {}
    for modality in modalities:
        folder = root / split / MODALITY_DIRS[modality] / label
        folder.mkdir(parents=True, exist_ok=True)
        if modality == "cough":
            path = folder / f"{stem}.wav"
            sf.write(path, rng.standard_normal(4000).astype(np.float32) * 0.1, 8000)
        else:
            path = folder / f"{stem}.png"
            Image.fromarray(rng.integers(0, 255, (24, 30), dtype=np.uint8)).save(path)
        files[modality] = path
    return files


def decoding(size: int = 16, **modalities: dict) -> DecodingSpec:
    """The default decoding spec (conf/decoding/default.yaml) at `size` px, per-modality
    options merged in (e.g. `ct={"window": {"center": 40}}`)."""
    cfg = OmegaConf.merge(OmegaConf.load(CONF / "decoding" / "default.yaml"), modalities)
    cfg.image_size = size
    return instantiate(cfg)


def make_tree(
    root: Path,
    per_split: dict[str, int] | None = None,
    classes: tuple[str, ...] = ("Healthy", "covid"),
    seed: int = 0,
) -> Path:
    per_split = per_split or {"train": 4, "valid": 2, "test": 2}
    rng = np.random.default_rng(seed)
    for split, count in per_split.items():
        for label in classes:
            for i in range(count):
                write_patient(root, split, label, f"{label}{split}{i}", rng)
    return root


@pytest.fixture
def tiny_tree(tmp_path: Path) -> Path:
    return make_tree(tmp_path / "tree")


@pytest.fixture
def compose_cfg(tmp_path: Path) -> Callable[..., DictConfig]:
    """compose(overrides) -> the resolved-able train config, as Hydra would build it."""

    def _compose(*overrides: str) -> DictConfig:
        GlobalHydra.instance().clear()
        with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
            cfg = compose("train", overrides=list(overrides), return_hydra_config=True)
        with open_dict(cfg):
            cfg.hydra.runtime.output_dir = str(tmp_path / "run")
            cfg.hydra.runtime.cwd = str(tmp_path)
            cfg.hydra.job.num = 0
        HydraConfig.instance().set_config(cfg)
        return cfg

    yield _compose
    GlobalHydra.instance().clear()


def run_cli(
    args: list[str], cwd: Path, timeout: float = 600, extra_env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """`python -m mmfusion ...` in a fresh process, as a user types it."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "HYDRA_FULL_ERROR": "0", **(extra_env or {})}
    return subprocess.run(
        [sys.executable, "-m", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def folder_job(tree: Path, *overrides: str, multirun: bool = False) -> list[str]:
    """The command line of a training job on the folder tree `tree` (a multirun: `-m`)."""
    return ["mmfusion", *["-m"] * multirun, "data=folder", f"data.root={tree}", *overrides]


def run_ok(args: list[str], cwd: Path, **options) -> subprocess.CompletedProcess:
    """`run_cli` for a command that must succeed: a failure fails the test with its stderr."""
    result = run_cli(args, cwd, **options)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def only_run_dir(workdir: Path) -> Path:
    """The run directory of the one training job run in `workdir`."""
    (run_dir,) = (workdir / "outputs" / "train" / "runs").iterdir()
    return run_dir


def mlflow_runs(workdir: Path) -> tuple[MlflowClient, list]:
    """The client of `workdir`'s MLflow store and every run of its `mmfusion` experiment."""
    from mlflow.tracking import MlflowClient  # on use: most tests never load MLflow

    client = MlflowClient(f"sqlite:///{workdir}/mlflow.db")
    experiment = client.get_experiment_by_name("mmfusion")
    assert experiment is not None
    return client, client.search_runs([experiment.experiment_id])


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class MlflowServer:
    """A real `mlflow server` on 127.0.0.1 (its own process group, so that `kill` also ends
    the uvicorn workers it starts)."""

    def __init__(self, folder: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.store = f"sqlite:///{folder}/server.db"
        self.log = folder / "server.log"
        self.process = subprocess.Popen(
            [
                sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1",
                "--port", str(self.port), "--backend-store-uri", self.store,
                "--default-artifact-root", str(folder / "server-artifacts"), "--workers", "1",
            ],
            cwd=folder, stdout=self.log.open("w"), stderr=subprocess.STDOUT,
            env=dict(os.environ), start_new_session=True,
        )  # fmt: skip

    def wait_until_up(self, timeout: float = 240) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            assert self.process.poll() is None, self.log.read_text()[-2000:]
            assert time.monotonic() < deadline, "mlflow server did not start"
            time.sleep(0.5)

    def kill(self) -> None:
        """SIGKILL to the server and its workers: a crash, no goodbye."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)


@pytest.fixture
def mlflow_server(tmp_path: Path) -> Iterator[MlflowServer]:
    """A real `mlflow server` on a free port, stopped after the test."""
    server = MlflowServer(tmp_path)
    try:
        server.wait_until_up()
        yield server
    finally:
        server.kill()


@pytest.fixture(scope="session")
def quick_run(tmp_path_factory) -> dict:
    """`python -m mmfusion experiment=quick`, made tiny (8 patients per class, 16 px, one epoch),
    in its own folder with its MLflow store: a trained model logged as users log one."""
    workdir = tmp_path_factory.mktemp("quick")
    quick = ["experiment=quick", "data.layout.per_class={train: 4, valid: 2, test: 2}"]
    tiny = ["data.decoding.image_size=16", "trainer.max_epochs=1", "data.decode_workers=1"]
    no_extras = ["callbacks.explain=null", "callbacks.robustness=null"]
    run_ok(["mmfusion", *quick, *tiny, *no_extras], workdir)
    run_dir = only_run_dir(workdir)
    (checkpoint,) = (run_dir / "checkpoints").glob("epoch*.ckpt")
    tracking_uri = f"sqlite:///{workdir}/mlflow.db"
    run_id = json.loads((run_dir / "mlflow_run.json").read_text())[tracking_uri]
    return {
        "workdir": workdir,
        "run_dir": run_dir,
        "checkpoint": checkpoint,
        "tracking_uri": tracking_uri,
        "run_id": run_id,
    }
