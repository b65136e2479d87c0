"""Rebuild a trained classifier from its checkpoint alone, without executing code from it."""

from __future__ import annotations

import pickle
from pathlib import Path

import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from mmfusion.errors import ConfigError
from mmfusion.models.module import FusionClassifier


def read_checkpoint(path: str | Path) -> dict:
    """The checkpoint's tensors and plain data; pickled code is refused, never run."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise ConfigError(f"ckpt_path={path} does not exist")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        first = str(err).strip().splitlines()[0]
        raise ConfigError(
            f"refusing to load {path}: it holds objects other than weights ({first})"
        ) from None
    except (RuntimeError, EOFError, OSError) as err:
        raise ConfigError(f"cannot read checkpoint {path}: {err}") from None


def load_classifier(path: str | Path) -> FusionClassifier:
    """The FusionClassifier of a checkpoint written by `python -m mmfusion`, in eval mode."""
    checkpoint = read_checkpoint(path)
    hparams = checkpoint.get("hyper_parameters", {})
    if "run_config" not in hparams:
        raise ConfigError(f"{path} is not an mmfusion checkpoint (no run_config inside)")
    cfg = OmegaConf.create(hparams["run_config"])
    cfg.fusion.backbone.pretrained = False  # the state dict below holds the trained weights
    net = instantiate(cfg.fusion, num_classes=len(hparams["class_names"]))
    model = instantiate(cfg.model, _partial_=True)(
        net=net,
        class_names=hparams["class_names"],
        input_stats=hparams["input_stats"],
        run_config=hparams["run_config"],
        modality_dropout=hparams.get("modality_dropout", 0.0),
    )
    try:
        model.load_state_dict(checkpoint["state_dict"])
    except RuntimeError as err:  # torch lists every mismatched key over many lines
        first = (str(err).splitlines()[1:] or [str(err)])[0].strip()  # the first mismatch
        raise ConfigError(
            f"{path} does not fit {cfg.fusion._target_} of this mmfusion version (written by "
            f"another one?): {first if len(first) <= 300 else first[:300] + ' ...'}"
        ) from None
    return model.eval()
