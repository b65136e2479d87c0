"""`encoder.<m>.init_from`: a modality's encoder starts from an earlier mmfusion run's (its head
and fusion dropped, its decoding checked); `encoder.<m>.freeze` / `training.freeze_encoders`
keep it as loaded, and frozen encoders train fusion + head on cached embeddings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate

from conftest import run_cli
from mmfusion.data.decoding.spec import DecodingSpec
from mmfusion.errors import ConfigError
from mmfusion.models.checkpoint import read_checkpoint

TINY = [
    "experiment=quick",
    "modality=cxr",
    "fusion=intermediate",
    "data.layout.per_class={train: 4, valid: 2, test: 2}",
    "data.decoding.image_size=16",
    "trainer.max_epochs=1",
    "data.decode_workers=1",
    "callbacks.explain=null",
    "callbacks.robustness=null",
]
ENCODER = "net.encoders.cxr."


def encoder_weights(checkpoint: Path) -> dict[str, torch.Tensor]:
    state = read_checkpoint(checkpoint)["state_dict"]
    return {k.removeprefix(ENCODER): v for k, v in state.items() if k.startswith(ENCODER)}


def the_run(workdir: Path) -> tuple[Path, Path]:
    """(run dir, best checkpoint) of the one run under `workdir`."""
    (run_dir,) = (workdir / "outputs" / "train" / "runs").iterdir()
    (checkpoint,) = (run_dir / "checkpoints").glob("epoch*.ckpt")
    return run_dir, checkpoint


@pytest.fixture(scope="module")
def source_run(tmp_path_factory) -> dict:
    """A unimodal CXR run, trained as a user would: the encoder another run starts from."""
    workdir = tmp_path_factory.mktemp("source")
    result = run_cli(["mmfusion", *TINY], cwd=workdir)
    assert result.returncode == 0, result.stderr[-3000:]
    run_dir, checkpoint = the_run(workdir)
    return {"workdir": workdir, "run_dir": run_dir, "checkpoint": checkpoint}


@pytest.mark.slow
def test_init_from_loads_the_encoder_and_drops_the_head(compose_cfg, source_run) -> None:
    cfg = compose_cfg(
        "modality=cxr",
        "fusion=late",  # another fusion and another class count: only the encoder is taken
        "backbone=simple_cnn",
        f"encoder.cxr.init_from={source_run['checkpoint']}",
    )
    net = instantiate(cfg.fusion, num_classes=3)
    loaded = net.encoder_for("cxr").state_dict()
    source = encoder_weights(source_run["checkpoint"])
    assert loaded.keys() == source.keys()
    for name, value in loaded.items():
        assert torch.equal(value, source[name]), name
    # the new run decodes and normalises cxr as the source run did
    source_decoding = read_checkpoint(source_run["checkpoint"])["hyper_parameters"]["decoding"]
    needs = net.input_specs()["cxr"]
    assert needs["normalisation"]["mean"] == source_decoding["cxr"]["normalisation"]["mean"]
    assert "init_from" in needs["normalisation"]["source"]


@pytest.mark.slow
def test_init_from_with_another_decoding_names_the_parameter(compose_cfg, source_run) -> None:
    cfg = compose_cfg(
        "modality=cxr",
        "fusion=intermediate",
        "backbone=simple_cnn",
        f"encoder.cxr.init_from={source_run['checkpoint']}",
        "data.decoding.image_size=32",  # the source run decoded at 16 px
    )
    net = instantiate(cfg.fusion, num_classes=2)
    spec = instantiate(cfg.data.decoding)
    assert isinstance(spec, DecodingSpec)
    with pytest.raises(ConfigError) as raised:
        spec.for_encoders(net.input_specs())
    message = str(raised.value)
    assert "\n" not in message
    assert "size=16" in message and "size=32" in message and "data.decoding.cxr.size" in message


@pytest.mark.slow
def test_init_from_a_run_that_did_not_use_the_modality_says_so(compose_cfg, source_run) -> None:
    cfg = compose_cfg(
        "modality=ct", "fusion=intermediate", "backbone=simple_cnn",
        f"encoder.ct.init_from={source_run['checkpoint']}",
    )  # fmt: skip
    with pytest.raises(Exception, match="that run did not use ct"):
        instantiate(cfg.fusion, num_classes=2)


@pytest.mark.slow
def test_frozen_transferred_encoder_trains_fusion_on_cached_embeddings(source_run, tmp_path):
    """The whole path a user takes: a run dir as init_from, the encoder frozen; the fit reads
    cached embeddings, the encoder ends as it was loaded, the MLflow run says all of it."""
    from mlflow.tracking import MlflowClient

    args = [
        "mmfusion", *TINY, f"encoder.cxr.init_from={source_run['run_dir']}",
        "training.freeze_encoders=true", "trainer.max_epochs=2",
    ]  # fmt: skip
    result = run_cli(args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    run_dir, checkpoint = the_run(tmp_path)
    trained, source = encoder_weights(checkpoint), encoder_weights(source_run["checkpoint"])
    for name, value in source.items():  # BatchNorm running statistics included
        assert torch.equal(trained[name], value), name
    cached = sorted((tmp_path / ".cache" / "mmfusion" / "embeddings").glob("cxr-*.npy"))
    assert len(cached) == 2  # train and val; test is read from the files
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    run_id = json.loads((run_dir / "mlflow_run.json").read_text())[uri]
    tags = MlflowClient(uri).get_run(run_id).data.tags
    assert tags["init_from.cxr"] == str(source_run["run_dir"])
    assert tags["embedding_cache"] == "used"
