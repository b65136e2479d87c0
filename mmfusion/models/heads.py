"""Heads: the fused tensor (B, in_features) -> class logits (B, num_classes)."""

from __future__ import annotations

from torch import nn


class LinearHead(nn.Linear):
    """One linear layer (early fusion's head, as a backbone's own classifier would be)."""

    def __init__(self, in_features: int, num_classes: int) -> None:
        super().__init__(in_features, num_classes)


class MLPHead(nn.Sequential):
    """Dropout, a hidden layer with ReLU, dropout, the classifier."""

    def __init__(
        self, in_features: int, num_classes: int, hidden_dim: int = 256, dropout: float = 0.3
    ) -> None:
        super().__init__(
            nn.Dropout(dropout),
            nn.Linear(in_features, hidden_dim),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden_dim, num_classes),
        )


class DropoutLinearHead(nn.Sequential):
    """Dropout, then the classifier (over a pooled attention token)."""

    def __init__(self, in_features: int, num_classes: int, dropout: float = 0.1) -> None:
        super().__init__(nn.Dropout(dropout), nn.Linear(in_features, num_classes))
