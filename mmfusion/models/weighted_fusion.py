"""Fusions that weight each modality per sample: attention pooling over tokens, gated features.

Both encode every modality separately (as intermediate fusion does), project the pooled features
to a common width and, for a modality a sample lacks, use a learned missing-modality token in its
place. After `forward`, `modality_weights` (B, M) holds the weights each sample gave.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from mmfusion.models.contracts import Presence, presence_mask
from mmfusion.models.fusion import Encoder
from mmfusion.models.missing import like_any


class ModalityTokens(nn.Module):
    """One encoder per modality -> (B, M, dim) tokens; absent modalities -> a learned token.

    Tokens are batch-normalised: a fresh encoder's pooled features barely differ between samples,
    and only normalising across the batch makes that difference the token. With LayerNorm (per
    sample) a lone modality's token stayed all but constant: a sigmoid gate shut on it within 10
    steps, and attention fusion stayed at chance on a faint finding for 120 steps.
    """

    def __init__(self, backbone: Encoder, modalities: Sequence[str], dim: int) -> None:
        super().__init__()
        self.modalities = list(modalities)
        self.encoders = nn.ModuleDict({m: backbone(1) for m in self.modalities})
        self.projections = nn.ModuleDict(
            {
                m: nn.Sequential(nn.Linear(e.out_features, dim), nn.BatchNorm1d(dim))
                for m, e in self.encoders.items()
            }
        )
        self.missing = nn.Parameter(torch.zeros(len(self.modalities), dim))
        nn.init.normal_(self.missing, std=0.02)

    def forward(self, inputs: dict[str, Tensor], present: Presence = None) -> Tensor:
        tokens = torch.stack(
            [self.projections[m](self.encoders[m](like_any(inputs, m))) for m in self.modalities],
            dim=1,
        )
        mask = presence_mask(present, self.modalities, inputs).unsqueeze(-1)
        return tokens * mask + self.missing.to(tokens.dtype) * (1 - mask)


class AttentionFusion(nn.Module):
    """Modality tokens (+ a learned modality embedding), an optional small transformer over them
    (`layers=0`: none), then a learned query attends over the tokens; its attention weights are
    the modality weights.
    """

    def __init__(
        self,
        backbone: Encoder,
        modalities: Sequence[str],
        num_classes: int,
        dim: int = 128,
        heads: int = 4,
        layers: int = 1,
        dropout: float = 0.1,
        modality_dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.modality_dropout = modality_dropout  # applied to batches by FusionClassifier
        self.modalities = list(modalities)
        self.tokens = ModalityTokens(backbone, self.modalities, dim)
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
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(dim, num_classes))
        self.modality_weights: Tensor | None = None

    def forward(self, inputs: dict[str, Tensor], present: Presence = None) -> Tensor:
        tokens = self.mixer(self.tokens(inputs, present) + self.embedding)
        query = self.query.expand(tokens.shape[0], -1, -1)
        pooled, weights = self.pool(query, tokens, tokens, need_weights=True)
        self.modality_weights = weights[:, 0].detach()  # (B, M), heads averaged, rows sum to 1
        return self.head(pooled[:, 0])


class GatedFusion(nn.Module):
    """A sigmoid gate per modality, computed from all modalities' features together, scales each
    modality's features before the head (a gated multimodal unit); the gates are the weights.
    """

    def __init__(
        self,
        backbone: Encoder,
        modalities: Sequence[str],
        num_classes: int,
        dim: int = 128,
        hidden_dim: int = 256,
        dropout: float = 0.3,
        modality_dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.modality_dropout = modality_dropout  # applied to batches by FusionClassifier
        self.modalities = list(modalities)
        count = len(self.modalities)
        self.tokens = ModalityTokens(backbone, self.modalities, dim)
        self.gate = nn.Linear(count * dim, count)
        self.head = nn.Sequential(
            nn.Dropout(dropout),
            nn.Linear(count * dim, hidden_dim),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden_dim, num_classes),
        )
        self.modality_weights: Tensor | None = None

    def forward(self, inputs: dict[str, Tensor], present: Presence = None) -> Tensor:
        tokens = self.tokens(inputs, present)  # (B, M, dim)
        gates = torch.sigmoid(self.gate(tokens.flatten(1)))  # (B, M), each in (0, 1)
        self.modality_weights = gates.detach()
        return self.head((tokens * gates.unsqueeze(-1)).flatten(1))
