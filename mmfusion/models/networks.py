"""Networks composed of encoders, a fusion and a head, at the three levels where modalities can
meet: their inputs (early), their features (intermediate, attention, gated, tensor,
cross-attention) or their decisions (late). A fusion's YAML names the network it needs.

Every network maps `({modality: (B, C, H, W)}, present=None)` to class logits (B, classes) and
offers `modalities`, `encoder_for(modality)` (the encoder that reads it, for Grad-CAM),
`modality_weights` (per-sample weights of its last forward pass, when its fusion has them) and
`input_specs()` (what each modality's encoder fixes in its decoding). Networks with an encoder
per modality also split `forward` into `encode(modality, x)` and `fuse(features, present)`, so
frozen encoders' embeddings can be computed once and cached (`mmfusion.training.embeddings`).
The parts arrive as factories (Hydra partials) and are built here, once, with the widths they
need: an encoder from nothing, a fusion from the encoders' widths, a head from the fusion's.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mmfusion.models.contracts import Presence
from mmfusion.models.encoders.base import Encoder, build_encoder
from mmfusion.models.missing import batch_size_of, presence_mask

EncoderFactory = Callable[..., Encoder]
HeadFactory = Callable[[int, int], nn.Module]


class MultimodalNet(nn.Module):
    """What the three levels share."""

    modalities: list[str]
    #: why its encoders' embeddings cannot be cached (None: they can)
    no_embedding_cache: str | None = None

    def encoder_for(self, modality: str) -> Encoder:
        raise NotImplementedError

    def input_specs(self) -> dict[str, dict | None]:
        """{modality: what its encoder fixes in the decoding (`Encoder.input_spec`)}."""
        return {m: self.encoder_for(m).input_spec() for m in self.modalities}

    def encode(self, modality: str, x: Tensor) -> Tensor:
        raise NotImplementedError(self.no_embedding_cache)

    def fuse(self, features: dict[str, Tensor], present: Presence = None) -> Tensor:
        raise NotImplementedError(self.no_embedding_cache)

    @property
    def modality_weights(self) -> Tensor | None:
        return getattr(getattr(self, "fusion", None), "modality_weights", None)


class InputFusionNet(MultimodalNet):
    """Early fusion: the inputs fused into one image (`fusion`, e.g. stacked as channels), one
    encoder over it, which sees every modality from its first layer, and a head."""

    no_embedding_cache = "early fusion fuses the inputs: no encoder sees one modality alone"

    def __init__(
        self,
        modalities: Sequence[str],
        num_classes: int,
        fusion: Callable[[Sequence[str]], nn.Module],
        encoder: EncoderFactory,
        head: HeadFactory,
    ) -> None:
        super().__init__()
        self.modalities = list(modalities)
        self.fusion = fusion(self.modalities)
        self.encoder = encoder(in_chans=self.fusion.out_channels)
        self.head = head(self.encoder.out_features, num_classes)

    def encoder_for(self, modality: str) -> Encoder:
        return self.encoder

    def input_specs(self) -> dict[str, dict | None]:
        """None: the one encoder reads the fused channels, so every modality is normalised with
        its own training statistics."""
        return dict.fromkeys(self.modalities)

    def forward(self, inputs: dict[str, Tensor], present: Presence = None) -> Tensor:
        batch_size_of(inputs)
        return self.head(self.encoder(self.fusion(inputs, present)))


class FeatureFusionNet(MultimodalNet):
    """One encoder per modality, their features fused (`fusion`), a head on the fused tensor.
    `tokens=true` hands the fusion each encoder's tokens (B, N, D) instead of pooled features."""

    def __init__(
        self,
        modalities: Sequence[str],
        num_classes: int,
        encoders: Mapping[str, EncoderFactory],
        fusion: Callable[[Mapping[str, int]], nn.Module],
        head: HeadFactory,
        tokens: bool = False,
    ) -> None:
        super().__init__()
        self.modalities = list(modalities)
        self.tokens = tokens
        self.encoders = nn.ModuleDict({m: build_encoder(encoders[m], m) for m in self.modalities})
        if tokens:
            for encoder in self.encoders.values():
                encoder.use_tokens()
        widths = {
            m: e.token_features if tokens else e.out_features for m, e in self.encoders.items()
        }
        self.fusion = fusion(widths)
        self.head = head(self.fusion.out_features, num_classes)

    def encoder_for(self, modality: str) -> Encoder:
        return self.encoders[modality]

    def encode(self, modality: str, x: Tensor) -> Tensor:
        encoder = self.encoders[modality]
        return encoder.tokens(x) if self.tokens else encoder(x)

    def fuse(self, features: dict[str, Tensor], present: Presence = None) -> Tensor:
        batch_size_of(features)
        return self.head(self.fusion(features, present))

    def forward(self, inputs: dict[str, Tensor], present: Presence = None) -> Tensor:
        batch_size_of(inputs)
        features = {m: self.encode(m, x) for m, x in inputs.items() if m in self.encoders}
        return self.fuse(features, present)


class DecisionFusionNet(MultimodalNet):
    """Late fusion: each modality's encoder and head classify it alone; `fusion` combines their
    decisions (e.g. a weighted mean of probabilities) and nothing else crosses modalities.

    `aux_weight` > 0 adds each modality's own cross-entropy (present samples only) to the loss
    (`extra_loss`), so every single-modality classifier is trained to stand on its own.
    """

    def __init__(
        self,
        modalities: Sequence[str],
        num_classes: int,
        encoders: Mapping[str, EncoderFactory],
        head: HeadFactory,
        fusion: Callable[[Sequence[str]], nn.Module],
        aux_weight: float = 0.0,
    ) -> None:
        super().__init__()
        self.modalities = list(modalities)
        self.num_classes = num_classes
        self.encoders = nn.ModuleDict({m: build_encoder(encoders[m], m) for m in self.modalities})
        self.heads = nn.ModuleDict(
            {m: head(e.out_features, num_classes) for m, e in self.encoders.items()}
        )
        self.fusion = fusion(self.modalities)
        self.aux_weight = aux_weight
        self._last: tuple[Tensor, Tensor] | None = None  # per-modality logits, presence mask

    def encoder_for(self, modality: str) -> Encoder:
        return self.encoders[modality]

    def encode(self, modality: str, x: Tensor) -> Tensor:
        return self.encoders[modality](x)

    def fuse(self, features: dict[str, Tensor], present: Presence = None) -> Tensor:
        batch = batch_size_of(features)
        reference = next(iter(features.values()))
        absent = reference.new_zeros(batch, self.num_classes)
        logits = {
            m: self.heads[m](features[m]) if m in features else absent for m in self.modalities
        }
        self._last = (
            torch.stack([logits[m] for m in self.modalities], dim=1),
            presence_mask(present, self.modalities, features),
        )
        return self.fusion(logits, present)

    def forward(self, inputs: dict[str, Tensor], present: Presence = None) -> Tensor:
        batch_size_of(inputs)
        features = {m: self.encode(m, x) for m, x in inputs.items() if m in self.encoders}
        return self.fuse(features, present)

    def extra_loss(self, labels: Tensor) -> Tensor:
        """aux_weight x mean cross-entropy of each modality's own classifier, last forward pass."""
        if self._last is None or self.aux_weight == 0:
            return torch.zeros((), device=labels.device)
        logits, mask = self._last
        losses = [
            F.cross_entropy(logits[:, i], labels, reduction="none") for i in range(logits.shape[1])
        ]
        per_sample = torch.stack(losses, dim=1) * mask
        return self.aux_weight * per_sample.sum() / mask.sum().clamp_min(1)
