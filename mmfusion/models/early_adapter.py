"""Early fusion for ImageNet-style backbones: a 1x1 convolution maps N modality channels to 3."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from mmfusion.models.contracts import Presence, presence_mask
from mmfusion.models.fusion import Encoder
from mmfusion.models.missing import like_any


class EarlyAdapterFusion(nn.Module):
    """Stack the modalities as channels, mix them to 3 channels with a learned 1x1 convolution,
    then one 3-channel backbone, so a pretrained RGB stem is used as it was trained.

    An absent modality is zero-filled, which after input normalisation is its training mean.
    """

    def __init__(
        self,
        backbone: Encoder,
        modalities: Sequence[str],
        num_classes: int,
        out_chans: int = 3,
        modality_dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.modality_dropout = modality_dropout  # applied to batches by FusionClassifier
        self.modalities = list(modalities)
        self.adapter = nn.Conv2d(len(self.modalities), out_chans, kernel_size=1)
        self.encoder = backbone(out_chans)
        self.head = nn.Linear(self.encoder.out_features, num_classes)

    def forward(self, inputs: dict[str, Tensor], present: Presence = None) -> Tensor:
        x = torch.cat([like_any(inputs, m) for m in self.modalities], dim=1)
        mask = presence_mask(present, self.modalities, inputs)
        return self.head(self.encoder(self.adapter(x * mask[:, :, None, None])))
