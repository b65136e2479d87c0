"""What every encoder offers the networks, the explanations and staged training."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import Tensor, nn


class Encoder(nn.Module):
    """(B, C, H, W) -> pooled features (B, `out_features`).

    `tokens` gives the features before pooling, (B, N, `token_features`), for fusions that
    attend across positions; `stages` lists the spatial stages, shallow to deep, that Grad-CAM
    may read.

    `freeze`: the encoder is not trained (staged training's stage 2, `encoder.<m>.freeze=true`)
    and stays in eval mode, so its BatchNorm statistics and dropout stay as loaded.
    `init_from`: a local mmfusion checkpoint whose encoder of the same modality initialises this
    one (the head and fusion of that run are dropped); `input_spec` then asks for that run's
    decoding and normalisation.
    """

    out_features: int
    token_features: int

    def __init__(self, freeze: bool = False, init_from: str | None = None) -> None:
        super().__init__()
        self.freeze = freeze
        self.init_from = init_from
        self.modality: str | None = None
        # the transferred run's decoding of this modality (plain data), once loaded
        self.source_decoding: dict[str, Any] | None = None

    def train(self, mode: bool = True) -> Encoder:
        """A frozen encoder stays in eval mode whatever its network is switched to."""
        return super().train(mode and not self.freeze)

    def use_tokens(self) -> None:
        """Called once when a fusion will read `tokens` instead of the pooled features."""

    def tokens(self, x: Tensor) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__} gives no tokens")

    def stages(self) -> list[nn.Module]:
        return [m for m in self.modules() if isinstance(m, nn.Conv2d)]

    def pretrained_input_spec(self) -> dict[str, Any] | None:
        """What the pretrained weights fix in the decoding (see `DecodingSpec.for_encoders`):
        `normalisation` ({mean, std, source}), `set` (decoding parameters), `require`."""
        return None

    def input_spec(self) -> dict[str, Any] | None:
        """What this encoder fixes in its modality's decoding: a transferred encoder the
        decoding and normalisation of the run it came from, a pretrained one its weights'."""
        if self.source_decoding is None:
            return self.pretrained_input_spec()
        source = f"encoder.{self.modality}.init_from={self.init_from}"
        normalisation = dict(self.source_decoding["normalisation"])
        normalisation["source"] = (
            f"{normalisation.get('source', 'train')} of init_from {self.init_from}"
        )
        require = {k: v for k, v in self.source_decoding.items() if k != "normalisation"}
        return {"normalisation": normalisation, "require": require, "source": source}


def build_encoder(factory: Callable[[], Encoder], modality: str) -> Encoder:
    """A modality's encoder from its factory, initialised from `init_from` when it has one."""
    from mmfusion.models.encoders.transfer import load_encoder

    encoder = factory()
    encoder.modality = modality
    if encoder.init_from:
        encoder.source_decoding = load_encoder(encoder, encoder.init_from, modality)
    return encoder
