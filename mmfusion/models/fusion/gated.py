"""Gated fusion: a sigmoid gate per modality, from all modalities' features together."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

from mmfusion.models.contracts import Presence
from mmfusion.models.fusion.tokens import ModalityTokens


class GatedFusion(nn.Module):
    """Each modality's token scaled by its gate (a gated multimodal unit), then concatenated; the
    gates (each in 0..1, not normalised) are the sample's modality weights."""

    def __init__(self, in_features: Mapping[str, int], dim: int = 128) -> None:
        super().__init__()
        self.modalities = list(in_features)
        count = len(self.modalities)
        self.tokens = ModalityTokens(in_features, dim)
        self.gate = nn.Linear(count * dim, count)
        self.out_features = count * dim
        self.modality_weights: Tensor | None = None

    def forward(self, features: dict[str, Tensor], present: Presence = None) -> Tensor:
        tokens = self.tokens(features, present)  # (B, M, dim)
        gates = torch.sigmoid(self.gate(tokens.flatten(1)))  # (B, M), each in (0, 1)
        self.modality_weights = gates.detach()
        return (tokens * gates.unsqueeze(-1)).flatten(1)
