"""What a network may offer beyond `forward(inputs, present) -> logits`.

FusionClassifier and the explainability code ask for these capabilities with `isinstance`, so
they never need to know which fusion they hold.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

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
