"""Input-level (early) fusion: the modalities become the channels of one image."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from mmfusion.models.contracts import Presence
from mmfusion.models.missing import like_any, presence_mask


class ChannelStack(nn.Module):
    """Stack the modalities as channels; an absent one is zero-filled (its training mean, since
    inputs are normalised)."""

    def __init__(self, modalities: Sequence[str]) -> None:
        super().__init__()
        self.modalities = list(modalities)
        self.out_channels = len(self.modalities)

    def forward(self, inputs: dict[str, Tensor], present: Presence = None) -> Tensor:
        x = torch.cat([like_any(inputs, m) for m in self.modalities], dim=1)
        mask = presence_mask(present, self.modalities, inputs)
        return x * mask[:, :, None, None]


class ChannelAdapter(ChannelStack):
    """The stacked channels mixed to `out_chans` by a learned 1x1 convolution, so that an
    ImageNet-style 3-channel stem is used as it was trained."""

    def __init__(self, modalities: Sequence[str], out_chans: int = 3) -> None:
        super().__init__(modalities)
        self.adapter = nn.Conv2d(len(self.modalities), out_chans, kernel_size=1)
        self.out_channels = out_chans

    def forward(self, inputs: dict[str, Tensor], present: Presence = None) -> Tensor:
        return self.adapter(super().forward(inputs, present))
