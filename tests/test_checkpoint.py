"""Checkpoints rebuild the trained model alone and never execute code."""

from __future__ import annotations

import pickle

import pytest
import torch

from conftest import make_tree, run_cli
from mmfusion.errors import ConfigError
from mmfusion.explain.localisation import localise
from mmfusion.models.checkpoint import load_classifier, read_checkpoint


class Payload:
    def __reduce__(self):
        return (print, ("pwned",))


def test_a_checkpoint_with_pickled_code_is_refused(tmp_path, capsys):
    path = tmp_path / "evil.ckpt"
    with open(path, "wb") as handle:
        pickle.dump({"state_dict": {}, "payload": Payload()}, handle)
    with pytest.raises(ConfigError, match="refusing to load .*evil.ckpt"):
        read_checkpoint(path)
    assert "pwned" not in capsys.readouterr().out


def test_a_checkpoint_of_mmfusion_0_1_is_refused_saying_which_version_wrote_it(tmp_path):
    """0.1 wrote no version key; its fusion modules built their own encoders, which the composed
    networks of 0.2 cannot load: one line, not torch's list of missing keys."""
    path = tmp_path / "old.ckpt"
    hparams = {"run_config": {"fusion": {}}, "decoding": {}, "class_names": ["a", "b"]}
    torch.save({"state_dict": {}, "hyper_parameters": hparams}, path)
    with pytest.raises(ConfigError, match=r"old.ckpt was written by mmfusion 0.1, .*retrain it"):
        load_classifier(path)


def test_missing_checkpoint_names_the_option(tmp_path):
    with pytest.raises(ConfigError, match="checkpoint .*nope.ckpt does not exist"):
        read_checkpoint(tmp_path / "nope.ckpt")


@pytest.mark.slow
def test_trained_checkpoint_reloads_to_the_same_predictions(tmp_path):
    tree = make_tree(tmp_path / "tree", per_split={"train": 2, "valid": 1, "test": 1})
    args = [
        "mmfusion",
        "data=folder",
        f"data.root={tree}",
        "backbone=simple_cnn",
        "fusion=intermediate",
        "trainer.max_epochs=1",
        "data.decoding.image_size=16",
        "logger=none",
    ]
    assert run_cli(args, cwd=tmp_path).returncode == 0
    (ckpt,) = (tmp_path / "outputs").rglob("last.ckpt")
    model = load_classifier(ckpt)
    torch.manual_seed(0)
    inputs = {m: torch.rand(2, 1, 16, 16) for m in ("ct", "cxr", "cough")}
    again = load_classifier(ckpt)
    assert torch.equal(model(inputs), again(inputs))
    assert model.hparams.class_names == ["Healthy", "covid"]
    state = torch.load(ckpt, weights_only=True)["state_dict"]
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())

    state["net.unknown.weight"] = torch.zeros(1)  # e.g. a fusion whose layers have changed since
    torch.save({**torch.load(ckpt, weights_only=True), "state_dict": state}, tmp_path / "old.ckpt")
    with pytest.raises(
        ConfigError,
        match=r"old.ckpt \(written by mmfusion .*\) does not fit .*FeatureFusionNet .*unknown",
    ):
        load_classifier(tmp_path / "old.ckpt")
    with pytest.raises(ConfigError, match="not trained on data=synthetic"):
        localise(ckpt)  # no finding regions to score Grad-CAM against
