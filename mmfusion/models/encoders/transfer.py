"""An encoder initialised from an earlier mmfusion run (`encoder.<m>.init_from`): another data
set, another label set, a unimodal run. Only the encoder's weights are taken; the head and the
fusion of that run are dropped. URIs and run directories are resolved to a local checkpoint
above this layer (`mmfusion.training.transfer`)."""

from __future__ import annotations

from typing import Any

from torch import nn

from mmfusion.errors import ConfigError


def encoder_state(state: dict, modality: str, modalities: list[str]) -> dict | None:
    """The weights of `modality`'s encoder in a checkpoint's state dict: its own encoder
    (feature- and decision-level fusions), or early fusion's one encoder if that run saw only
    this modality."""
    own = f"net.encoders.{modality}."
    found = {k.removeprefix(own): v for k, v in state.items() if k.startswith(own)}
    if found or modalities != [modality]:
        return found or None
    return {
        k.removeprefix("net.encoder."): v for k, v in state.items() if k.startswith("net.encoder.")
    } or None


def load_encoder(encoder: nn.Module, path: str, modality: str) -> dict[str, Any]:
    """Load `modality`'s encoder weights of the checkpoint at `path` into `encoder`; returns that
    run's decoding of the modality (plain data), which the new run's must match."""
    from mmfusion.models.checkpoint import read_checkpoint

    checkpoint = read_checkpoint(path)
    option = f"encoder.{modality}.init_from={path}"
    decoding = checkpoint.get("hyper_parameters", {}).get("decoding")
    if not decoding:
        raise ConfigError(f"{option}: not an mmfusion checkpoint (no decoding inside)")
    if modality not in decoding:
        raise ConfigError(
            f"{option}: that run did not use {modality} (it used {', '.join(decoding)})"
        )
    state = encoder_state(checkpoint.get("state_dict", {}), modality, list(decoding))
    if state is None:
        raise ConfigError(
            f"{option}: that run has no encoder of {modality} alone (early fusion of "
            f"{', '.join(decoding)} encodes them together)"
        )
    try:
        encoder.load_state_dict(state)
    except RuntimeError as err:
        first = (str(err).splitlines()[1:] or [str(err)])[0].strip()
        raise ConfigError(
            f"{option}: its encoder does not fit encoder.{modality} (same name, in_chans and "
            f"pretrained channels needed): {first[:300]}"
        ) from None
    return dict(decoding[modality])
