"""A model source (checkpoint, run directory, MLflow model URI) resolves to one checkpoint file,
the same model whichever way it is named; what cannot be resolved is one clear error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from mmfusion.cli.predict import main as predict_main
from mmfusion.errors import ConfigError
from mmfusion.serving.sources import is_mlflow_uri, resolve_checkpoint


def test_mlflow_uris_are_told_from_paths():
    assert is_mlflow_uri("runs:/0123abcd/model") and is_mlflow_uri("models:/fusion/3")
    assert not is_mlflow_uri("outputs/train/runs/x") and not is_mlflow_uri(Path("runs:/x"))


def test_a_checkpoint_file_is_itself(tmp_path):
    ckpt = tmp_path / "any.ckpt"
    ckpt.write_bytes(b"x")
    assert resolve_checkpoint(str(ckpt)) == ckpt


def test_a_run_dir_gives_its_best_checkpoint(tmp_path):
    folder = tmp_path / "run" / "checkpoints"
    folder.mkdir(parents=True)
    (folder / "epoch03.ckpt").write_bytes(b"best")
    (folder / "last.ckpt").symlink_to("epoch03.ckpt")
    assert resolve_checkpoint(tmp_path / "run") == folder / "epoch03.ckpt"
    assert resolve_checkpoint(folder) == folder / "epoch03.ckpt"


def test_run_dirs_without_one_best_checkpoint_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="no checkpoint in"):
        resolve_checkpoint(tmp_path)
    (tmp_path / "epoch01.ckpt").write_bytes(b"a")
    (tmp_path / "epoch02.ckpt").write_bytes(b"b")
    with pytest.raises(ConfigError, match=r"several checkpoints \(epoch01.ckpt, epoch02.ckpt\)"):
        resolve_checkpoint(tmp_path)


def test_a_missing_source_names_what_is_accepted(tmp_path):
    with pytest.raises(ConfigError, match="does not exist: give a checkpoint file, a run dir"):
        resolve_checkpoint(tmp_path / "nope")
    with pytest.raises(ConfigError, match=r"^checkpoint .*/x.ckpt does not exist$"):
        resolve_checkpoint(tmp_path / "x.ckpt")


@pytest.mark.slow  # creating an MLflow store takes seconds
def test_an_unknown_mlflow_run_is_one_error(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    with pytest.raises(ConfigError, match="cannot download the model runs:/0123abcd/model"):
        resolve_checkpoint("runs:/0123abcd", uri, tmp_path / "dl")


@pytest.mark.slow
def test_every_name_of_a_logged_model_gives_its_weights(quick_run, tmp_path):
    by_path = resolve_checkpoint(quick_run["run_dir"])
    assert by_path == quick_run["checkpoint"]
    run_id, store = quick_run["run_id"], quick_run["tracking_uri"]
    for uri in (f"runs:/{run_id}/model", f"runs:/{run_id}"):
        served = resolve_checkpoint(uri, store, tmp_path / uri.replace(":/", "_").replace("/", "_"))
        original = torch.load(by_path, weights_only=True)["state_dict"]
        downloaded = torch.load(served, weights_only=True)["state_dict"]
        assert original.keys() == downloaded.keys()
        assert all(torch.equal(original[k], downloaded[k]) for k in original)


@pytest.mark.slow
def test_predict_takes_a_run_dir_or_an_mlflow_uri(quick_run, capsys):
    ct = next((quick_run["workdir"] / "data").glob("synthetic-*/test/CT/covid/*.png"))
    outputs = []
    for source in (str(quick_run["run_dir"]), f"runs:/{quick_run['run_id']}/model"):
        predict_main([source, "--tracking-uri", quick_run["tracking_uri"], "--ct", str(ct)])
        outputs.append(json.loads(capsys.readouterr().out))
    assert outputs[0]["probabilities"] == pytest.approx(outputs[1]["probabilities"], abs=1e-6)
    assert outputs[0]["missing"] == ["cxr", "cough"]
