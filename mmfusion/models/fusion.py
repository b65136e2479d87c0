"""Fusion strategies: each maps {modality: (B, 1, H, W)} to class logits (B, num_classes).

Definitions used throughout mmfusion:
- early: the modalities are combined at the input, as channels of one image, and a single
  network sees them together from the first layer.
- intermediate: each modality has its own encoder; their feature vectors are combined
  (concatenated here) and a shared head classifies the combination.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

Encoder = Callable[[int], nn.Module]


class EarlyFusion(nn.Module):
    """Stack the modalities as input channels of one backbone (`in_chans` = #modalities)."""

    def __init__(self, backbone: Encoder, modalities: Sequence[str], num_classes: int) -> None:
        super().__init__()
        self.modalities = list(modalities)
        self.encoder = backbone(len(self.modalities))
        self.head = nn.Linear(self.encoder.out_features, num_classes)

    def forward(self, inputs: dict[str, Tensor]) -> Tensor:
        x = torch.cat([inputs[m] for m in self.modalities], dim=1)
        return self.head(self.encoder(x))


class IntermediateFusion(nn.Module):
    """One encoder per modality; pooled features concatenated into an MLP head."""

    def __init__(
        self,
        backbone: Encoder,
        modalities: Sequence[str],
        num_classes: int,
        hidden_dim: int = 256,
        dropout: float = 0.3,
    ) -> None:
        super().__init__()
        self.modalities = list(modalities)
        self.encoders = nn.ModuleDict({m: backbone(1) for m in self.modalities})
        width = sum(e.out_features for e in self.encoders.values())
        self.head = nn.Sequential(
            nn.Dropout(dropout),
            nn.Linear(width, hidden_dim),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden_dim, num_classes),
        )

    def forward(self, inputs: dict[str, Tensor]) -> Tensor:
        features = [self.encoders[m](inputs[m]) for m in self.modalities]
        return self.head(torch.cat(features, dim=1))
