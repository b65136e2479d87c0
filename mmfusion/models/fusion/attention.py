"""Attention fusion: a learned query attends over the modality tokens, per sample."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

from mmfusion.models.contracts import Presence
from mmfusion.models.fusion.tokens import ModalityTokens


class AttentionFusion(nn.Module):
    """Modality tokens (+ a learned modality embedding), an optional small transformer over them
    (`layers=0`: none), then a learned query attends over the tokens; its attention weights (they
    sum to one over the modalities) are the sample's modality weights."""

    def __init__(
        self,
        in_features: Mapping[str, int],
        dim: int = 128,
        heads: int = 4,
        layers: int = 1,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.modalities = list(in_features)
        self.tokens = ModalityTokens(in_features, dim)
        self.embedding = nn.Parameter(torch.zeros(1, len(self.modalities), dim))
        self.query = nn.Parameter(torch.zeros(1, 1, dim))
        # on the batch-normalised tokens' scale: each modality's identity, which the query needs
        # to prefer one, is as clear as its content from the first step (at 0.02 it was not)
        nn.init.normal_(self.embedding, std=1.0)
        nn.init.normal_(self.query, std=0.02)
        block = nn.TransformerEncoderLayer(
            dim, heads, dim_feedforward=2 * dim, dropout=dropout, batch_first=True, norm_first=True
        )
        self.mixer = (
            nn.TransformerEncoder(block, layers, enable_nested_tensor=False)
            if layers
            else nn.Identity()
        )
        self.pool = nn.MultiheadAttention(dim, heads, dropout=0.0, batch_first=True)
        self.out_features = dim
        self.modality_weights: Tensor | None = None

    def forward(self, features: dict[str, Tensor], present: Presence = None) -> Tensor:
        tokens = self.mixer(self.tokens(features, present) + self.embedding)
        query = self.query.expand(tokens.shape[0], -1, -1)
        pooled, weights = self.pool(query, tokens, tokens, need_weights=True)
        self.modality_weights = weights[:, 0].detach()  # (B, M), heads averaged, rows sum to 1
        return pooled[:, 0]
