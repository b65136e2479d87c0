"""Concatenation of the modalities' features (intermediate fusion's fusion)."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

from mmfusion.models.contracts import Presence
from mmfusion.models.missing import with_missing


class ConcatFusion(nn.Module):
    """Features concatenated in modality order; an absent modality's features are a learned
    missing-modality vector."""

    def __init__(self, in_features: Mapping[str, int]) -> None:
        super().__init__()
        self.modalities = list(in_features)
        self.missing = nn.ParameterDict(
            {m: nn.Parameter(torch.zeros(width)) for m, width in in_features.items()}
        )
        self.out_features = sum(in_features.values())

    def forward(self, features: dict[str, Tensor], present: Presence = None) -> Tensor:
        filled = with_missing(features, present, self.missing)
        return torch.cat([filled[m] for m in self.modalities], dim=1)
