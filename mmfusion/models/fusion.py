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

from mmfusion.models.missing import Present, batch_size_of, is_present, like_any

Encoder = Callable[[int], nn.Module]


class EarlyFusion(nn.Module):
    """Stack the modalities as input channels of one backbone (`in_chans` = #modalities)."""

    def __init__(
        self,
        backbone: Encoder,
        modalities: Sequence[str],
        num_classes: int,
        modality_dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.modalities = list(modalities)
        self.modality_dropout = modality_dropout  # applied to batches by FusionClassifier
        self.encoder = backbone(len(self.modalities))
        self.head = nn.Linear(self.encoder.out_features, num_classes)

    def forward(self, inputs: dict[str, Tensor], present: Present | None = None) -> Tensor:
        """Absent modalities are zero-filled (zero is the training mean after normalising)."""
        batch_size_of(inputs)
        channels = []
        for m in self.modalities:
            mask = is_present(present, m, inputs).view(-1, 1, 1, 1)
            channels.append(torch.where(mask, like_any(inputs, m), 0.0))
        return self.head(self.encoder(torch.cat(channels, dim=1)))


class IntermediateFusion(nn.Module):
    """One encoder per modality; pooled features concatenated into an MLP head."""

    def __init__(
        self,
        backbone: Encoder,
        modalities: Sequence[str],
        num_classes: int,
        hidden_dim: int = 256,
        dropout: float = 0.3,
        modality_dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.modalities = list(modalities)
        self.modality_dropout = modality_dropout  # applied to batches by FusionClassifier
        self.encoders = nn.ModuleDict({m: backbone(1) for m in self.modalities})
        # learned stand-in for the features of a missing modality
        self.missing_tokens = nn.ParameterDict(
            {m: nn.Parameter(torch.zeros(e.out_features)) for m, e in self.encoders.items()}
        )
        width = sum(e.out_features for e in self.encoders.values())
        self.head = nn.Sequential(
            nn.Dropout(dropout),
            nn.Linear(width, hidden_dim),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden_dim, num_classes),
        )

    def forward(self, inputs: dict[str, Tensor], present: Present | None = None) -> Tensor:
        """A missing modality's features are replaced by its learned missing-modality token."""
        batch = batch_size_of(inputs)
        features = []
        for m in self.modalities:
            token = self.missing_tokens[m].expand(batch, -1)
            if m not in inputs:
                features.append(token)
                continue
            mask = is_present(present, m, inputs).unsqueeze(1)
            features.append(torch.where(mask, self.encoders[m](inputs[m]), token))
        return self.head(torch.cat(features, dim=1))
