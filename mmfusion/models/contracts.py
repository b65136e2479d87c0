"""What a fusion network may offer beyond `forward(inputs, present) -> logits`.

FusionClassifier and the explainability code ask for these capabilities with `isinstance`, so
they never need to know which fusion they hold.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch
from torch import Tensor

# present[m]: bool (B,), True where sample b has modality m; None means every modality is there
Presence = dict[str, Tensor] | None


@runtime_checkable
class AuxiliaryLoss(Protocol):
    """A fusion with its own training loss term, computed from its last forward pass."""

    def extra_loss(self, labels: Tensor) -> Tensor: ...


@runtime_checkable
class ModalityWeighting(Protocol):
    """A fusion that weights modalities per sample; weights (B, M) of its last forward pass."""

    modalities: list[str]
    modality_weights: Tensor | None


def presence_mask(present: Presence, modalities: list[str], inputs: dict[str, Tensor]) -> Tensor:
    """(B, M) float mask, 1 where the modality is there (see `missing.is_present`)."""
    from mmfusion.models.missing import is_present

    like = next(iter(inputs.values()))
    return torch.stack([is_present(present, m, inputs) for m in modalities], dim=1).to(like.dtype)
