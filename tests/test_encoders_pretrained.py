"""Pretrained encoders load through timm's own Hugging Face Hub path, offline, from a hub cache
laid out here exactly as huggingface_hub writes it (no mock of timm or the hub); a missing cache
with no network is one error line naming the model, within seconds."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import pytest
import timm
import torch
from huggingface_hub import constants
from safetensors.torch import save_file
from timm.models import get_pretrained_cfg

from conftest import run_cli
from mmfusion.errors import ConfigError
from mmfusion.models.checkpoint import read_checkpoint
from mmfusion.models.encoders.timm_encoder import TimmEncoder

#: timm's smallest model with weights on the hub (timm/test_resnet.r160_in1k, ~1 MB)
MODEL = "test_resnet.r160_in1k"
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def populate_hub_cache(hub_cache: Path, model: str = MODEL, seed: int = 0) -> dict:
    """`model`'s weights (random, seeded) saved where `hf_hub_download` finds them: the blob
    named by its sha256, the snapshot link, refs/main. Returns the saved state dict."""
    repo_id = get_pretrained_cfg(model).hf_hub_id
    torch.manual_seed(seed)
    state = timm.create_model(model, pretrained=False).state_dict()
    repo = hub_cache / f"models--{repo_id.replace('/', '--')}"
    (repo / "blobs").mkdir(parents=True)
    staged = repo / "blobs" / "staged"
    save_file({k: v.contiguous() for k, v in state.items()}, str(staged))
    blob = staged.with_name(hashlib.sha256(staged.read_bytes()).hexdigest())
    staged.rename(blob)
    snapshot = repo / "snapshots" / COMMIT
    snapshot.mkdir(parents=True)
    (snapshot / "model.safetensors").symlink_to(Path("../..") / "blobs" / blob.name)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(COMMIT)
    return state


@pytest.fixture
def offline_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty hub cache of this test, with HF_HUB_OFFLINE=1 (as the env vars would set)."""
    cache = tmp_path / "hf" / "hub"
    cache.mkdir(parents=True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    return cache


def test_pretrained_weights_come_from_the_hub_cache_offline(offline_hub: Path) -> None:
    saved = populate_hub_cache(offline_hub)
    encoder = TimmEncoder(MODEL, in_chans=1, pretrained=True, grayscale_as_rgb=True)
    loaded = encoder.body.state_dict()
    for name, value in loaded.items():  # every weight is the cached file's (the head is dropped)
        assert torch.equal(value, saved[name]), name
    assert not any(k.startswith("fc.") for k in loaded)


def test_pretrained_normalisation_is_the_weights_own_and_grayscale_is_repeated(
    offline_hub: Path,
) -> None:
    populate_hub_cache(offline_hub)
    encoder = TimmEncoder(MODEL, in_chans=1, pretrained=True, grayscale_as_rgb=True)
    cfg = get_pretrained_cfg(MODEL)
    spec = encoder.input_spec()
    assert spec["normalisation"]["mean"] == list(cfg.mean)
    assert spec["normalisation"]["std"] == list(cfg.std)
    assert "timm/test_resnet.r160_in1k" in spec["normalisation"]["source"]
    # the RGB stem is kept as trained: the grayscale input is repeated on its 3 channels
    assert encoder(torch.rand(2, 3, 32, 32)).shape == (2, encoder.out_features)


def test_empty_cache_offline_is_one_line_naming_the_model_within_seconds(
    offline_hub: Path,
) -> None:
    start = time.monotonic()
    with pytest.raises(ConfigError) as raised:
        TimmEncoder("resnet18", in_chans=1, pretrained=True)
    message = str(raised.value)
    assert time.monotonic() - start < 5
    assert "\n" not in message
    assert "resnet18" in message and "HF_HUB_OFFLINE=1" in message
    assert "weights_path" in message  # how to get the weights without network


def test_local_weights_file_still_works_for_air_gapped_sites(tmp_path: Path) -> None:
    torch.manual_seed(1)
    state = timm.create_model(MODEL, pretrained=False).state_dict()
    path = tmp_path / "weights.safetensors"
    save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    encoder = TimmEncoder(
        MODEL, in_chans=1, pretrained=True, weights_path=str(path), grayscale_as_rgb=True
    )
    for name, value in encoder.body.state_dict().items():  # the file's classifier is dropped
        assert torch.equal(value, state[name]), name


def test_missing_local_weights_file_names_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="weights_path=.*nowhere.pth does not exist"):
        TimmEncoder(MODEL, pretrained=True, weights_path=str(tmp_path / "nowhere.pth"))


QUICK = [
    "mmfusion",
    "experiment=quick",
    "data.layout.per_class={train: 4, valid: 2, test: 2}",
    "data.decoding.image_size=32",
    "trainer.max_epochs=1",
    "data.decode_workers=1",
    "callbacks.explain=null",
    "callbacks.robustness=null",
]


@pytest.mark.slow
def test_cli_offline_without_cache_fails_in_one_line(tmp_path: Path) -> None:
    """Refused by the preflight check, before torch is imported or an MLflow run exists."""
    env = {"HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1"}
    args = [*QUICK, "backbone=resnet18", "backbone.pretrained=true", "fusion=intermediate"]
    start = time.monotonic()
    result = run_cli(args, tmp_path, timeout=300, extra_env=env)
    assert time.monotonic() - start < 60  # ~5 s on an idle core
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr[-2000:]
    assert lines[0].startswith("mmfusion: error: encoder.ct.pretrained, encoder.cxr.pretrained")
    assert "timm model resnet18" in lines[0] and "HF_HUB_OFFLINE=1" in lines[0]
    assert not (tmp_path / "mlflow.db").exists()
    assert "Traceback" not in result.stdout + result.stderr


@pytest.mark.slow
def test_cli_offline_with_populated_cache_trains_and_records_the_normalisation(
    tmp_path: Path,
) -> None:
    populate_hub_cache(tmp_path / "hf" / "hub")
    env = {"HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1"}
    args = [
        *QUICK,
        "modality=cxr",
        "fusion=intermediate",
        "backbone=resnet18",
        f"backbone.name={MODEL}",
        "backbone.pretrained=true",
    ]
    result = run_cli(args, tmp_path, timeout=600, extra_env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    (run_dir,) = (tmp_path / "outputs" / "train" / "runs").iterdir()
    (checkpoint,) = (run_dir / "checkpoints").glob("epoch*.ckpt")
    normalisation = read_checkpoint(checkpoint)["hyper_parameters"]["decoding"]["cxr"][
        "normalisation"
    ]
    assert normalisation["mean"] == pytest.approx(list(get_pretrained_cfg(MODEL).mean))
    assert "timm/test_resnet.r160_in1k" in normalisation["source"]
