"""Shared fixtures: tiny data trees in the Kaggle layout and composed Hydra configs."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict
from PIL import Image

import mmfusion
import mmfusion.training.resume  # noqa: F401  (registers the run-dir resolver that hydra.run.dir uses)
from mmfusion.data.decoding.spec import DecodingSpec

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
