"""Late (decision-level) fusion: one classifier per modality, class probabilities combined."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mmfusion.models.contracts import Presence, presence_mask
from mmfusion.models.fusion import Encoder
from mmfusion.models.missing import like_any

EPS = 1e-8


class LateFusion(nn.Module):
    """Each modality's encoder + linear head gives probabilities; their weighted mean is the output.

    The weights are uniform, or learned (one softmax-normalised weight per modality) when
    `learned_weights`; absent modalities get weight zero and the rest are renormalised. `forward`
    returns the log of the combined probabilities, so softmax / cross-entropy apply unchanged.
    `aux_weight` > 0 adds the mean per-modality cross-entropy (present samples only) through
    `extra_loss`, so every single-modality classifier is trained to stand on its own.
    """

    def __init__(
        self,
        backbone: Encoder,
        modalities: Sequence[str],
        num_classes: int,
        learned_weights: bool = False,
        aux_weight: float = 0.0,
        dropout: float = 0.0,
        modality_dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.modality_dropout = modality_dropout  # applied to batches by FusionClassifier
        self.modalities = list(modalities)
        self.encoders = nn.ModuleDict({m: backbone(1) for m in self.modalities})
        self.heads = nn.ModuleDict(
            {
                m: nn.Sequential(nn.Dropout(dropout), nn.Linear(e.out_features, num_classes))
                for m, e in self.encoders.items()
            }
        )
        self.weight_logits = nn.Parameter(
            torch.zeros(len(self.modalities)), requires_grad=learned_weights
        )
        self.aux_weight = aux_weight
        self.modality_weights: Tensor | None = None
        self._last: tuple[Tensor, Tensor] | None = None  # per-modality logits, presence mask

    def forward(self, inputs: dict[str, Tensor], present: Presence = None) -> Tensor:
        logits = torch.stack(
            [self.heads[m](self.encoders[m](like_any(inputs, m))) for m in self.modalities], dim=1
        )  # (B, M, C)
        mask = presence_mask(present, self.modalities, inputs)
        weights = self.weight_logits.softmax(0).to(logits.dtype) * mask
        total = weights.sum(1, keepdim=True)
        probs = (weights.unsqueeze(-1) * logits.float().softmax(-1)).sum(1) / total.clamp_min(EPS)
        # a sample with no modality at all carries no evidence: uniform class probabilities
        probs = torch.where(total > 0, probs, torch.full_like(probs, 1 / probs.shape[1]))
        weights = weights / total.clamp_min(EPS)
        self.modality_weights = weights.detach()
        self._last = (logits, mask)
        return probs.clamp_min(EPS).log().to(logits.dtype)

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
