"""Rebuild a trained classifier from its checkpoint alone, without executing code from it."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, ListConfig, OmegaConf

from mmfusion import __version__
from mmfusion.errors import ConfigError
from mmfusion.models.classifier import VERSION_KEY, FusionClassifier


def read_checkpoint(path: str | Path) -> dict:
    """The checkpoint's tensors and plain data; pickled code is refused, never run."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise ConfigError(f"checkpoint {path} does not exist")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        first = str(err).strip().splitlines()[0]
        raise ConfigError(
            f"refusing to load {path}: it holds objects other than weights ({first})"
        ) from None
    except (RuntimeError, EOFError, OSError) as err:
        raise ConfigError(f"cannot read checkpoint {path}: {err}") from None
    except (KeyError, ValueError):  # the unpickler met bytes that are no pickle at all
        raise ConfigError(f"cannot read checkpoint {path}: not a PyTorch checkpoint") from None


def no_downloads(node: Any) -> None:
    """Switch off every weight source (`pretrained`, `init_from`) in a config subtree, in place:
    the checkpoint's state dict holds the trained weights."""
    if isinstance(node, DictConfig):
        if "pretrained" in node:
            node.pretrained = False
        if "init_from" in node:
            node.init_from = None
        for value in node.values():
            no_downloads(value)
    elif isinstance(node, ListConfig):
        for value in node:
            no_downloads(value)


def same_channels(fusion: DictConfig, decoding: dict) -> None:
    """Each modality's encoder rebuilt with the channels it was trained on: a pretrained RGB
    encoder read the grayscale input repeated on 3 channels (its normalisation has 3 values)."""
    encoders = fusion.get("encoders") or {}
    for modality, encoder in encoders.items():
        mean = decoding.get(modality, {}).get("normalisation", {}).get("mean")
        if isinstance(mean, list | tuple) and "in_chans" in encoder:
            encoder.in_chans = len(mean)


def load_classifier(path: str | Path) -> FusionClassifier:
    """The FusionClassifier of a checkpoint written by `python -m mmfusion`, in eval mode."""
    checkpoint = read_checkpoint(path)
    hparams = checkpoint.get("hyper_parameters", {})
    if "run_config" not in hparams:
        raise ConfigError(f"{path} is not an mmfusion checkpoint (no run_config inside)")
    written_by = checkpoint.get(VERSION_KEY)
    if written_by is None:
        raise ConfigError(
            f"{path} was written by mmfusion 0.1, whose networks predate the composed encoders + "
            f"fusion + head of {__version__}: retrain it with this version (python -m mmfusion ...)"
        )
    cfg = OmegaConf.create(hparams["run_config"])
    no_downloads(cfg.fusion)  # the state dict below holds the trained weights
    same_channels(cfg.fusion, hparams["decoding"])
    net = instantiate(cfg.fusion, num_classes=len(hparams["class_names"]))
    model = instantiate(cfg.model, _partial_=True)(
        net=net,
        class_names=hparams["class_names"],
        decoding=hparams["decoding"],
        run_config=hparams["run_config"],
    )
    try:
        model.load_state_dict(checkpoint["state_dict"])
    except RuntimeError as err:  # torch lists every mismatched key over many lines
        first = (str(err).splitlines()[1:] or [str(err)])[0].strip()  # the first mismatch
        raise ConfigError(
            f"{path} (written by mmfusion {written_by}) does not fit {cfg.fusion._target_} of "
            f"mmfusion {__version__}: {first if len(first) <= 300 else first[:300] + ' ...'}"
        ) from None
    return model.eval()
