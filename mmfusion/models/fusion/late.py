"""Decision-level (late) fusion's combiner: a weighted mean of the modalities' probabilities."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from mmfusion.models.contracts import Presence
from mmfusion.models.missing import presence_mask

EPS = 1e-8


class ProbabilityMean(nn.Module):
    """{modality: logits (B, C)} -> log of the weighted mean of their class probabilities.

    The weights are uniform, or learned (one softmax-normalised weight per modality) when
    `learned_weights`; absent modalities get weight zero and the rest are renormalised; a sample
    with no modality at all gets uniform probabilities. Returning log-probabilities keeps softmax
    and cross-entropy applicable unchanged.
    """

    def __init__(self, modalities: Sequence[str], learned_weights: bool = False) -> None:
        super().__init__()
        self.modalities = list(modalities)
        self.weight_logits = nn.Parameter(
            torch.zeros(len(self.modalities)), requires_grad=learned_weights
        )
        self.modality_weights: Tensor | None = None

    def forward(self, logits: dict[str, Tensor], present: Presence = None) -> Tensor:
        stacked = torch.stack([logits[m] for m in self.modalities], dim=1)  # (B, M, C)
        mask = presence_mask(present, self.modalities, logits)
        weights = self.weight_logits.softmax(0).to(stacked.dtype) * mask
        total = weights.sum(1, keepdim=True)
        probs = (weights.unsqueeze(-1) * stacked.float().softmax(-1)).sum(1) / total.clamp_min(EPS)
        probs = torch.where(total > 0, probs, torch.full_like(probs, 1 / probs.shape[1]))
        self.modality_weights = (weights / total.clamp_min(EPS)).detach()
        return probs.clamp_min(EPS).log().to(stacked.dtype)
