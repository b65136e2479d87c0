"""Cross-attention fusion: each modality's tokens attend to the other modalities' tokens."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

from mmfusion.models.contracts import Presence
from mmfusion.models.missing import presence_mask


class CrossAttentionFusion(nn.Module):
    """Token-level features in (`{modality: (B, N_m, D_m)}`, the encoders' maps before pooling).

    Each modality's tokens are projected to `dim`, batch-normalised and tagged with a learned
    modality embedding; each modality then queries the concatenated tokens of the others (itself
    when it is alone), its tokens plus what it attended to are mean-pooled, and the pooled vectors
    are concatenated (`out_features` = modalities x dim). An absent modality is one learned token.
    """

    def __init__(
        self, in_features: Mapping[str, int], dim: int = 128, heads: int = 4, dropout: float = 0.1
    ) -> None:
        super().__init__()
        self.modalities = list(in_features)
        count = len(self.modalities)
        self.projections = nn.ModuleDict({m: nn.Linear(w, dim) for m, w in in_features.items()})
        self.norms = nn.ModuleDict({m: nn.BatchNorm1d(dim) for m in in_features})
        self.embedding = nn.Parameter(torch.randn(count, dim))
        self.missing = nn.Parameter(torch.randn(count, dim) * 0.02)
        self.attend = nn.ModuleDict(
            {
                m: nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
                for m in in_features
            }
        )
        self.out_features = count * dim

    def _sequence(self, i: int, m: str, tokens: dict[str, Tensor], mask: Tensor) -> Tensor:
        """(B, N, dim) tokens of modality m; a sample without it gets the missing token."""
        missing = self.missing[i].view(1, 1, -1)
        if m not in tokens:
            batch = next(iter(tokens.values())).shape[0]
            return (missing + self.embedding[i]).expand(batch, 1, -1)
        x = self.projections[m](tokens[m])
        x = self.norms[m](x.flatten(0, 1)).view_as(x)
        x = torch.where(mask[:, i].view(-1, 1, 1) > 0, x, missing.to(x.dtype))
        return x + self.embedding[i]

    def forward(self, tokens: dict[str, Tensor], present: Presence = None) -> Tensor:
        mask = presence_mask(present, self.modalities, tokens)
        sequences = [self._sequence(i, m, tokens, mask) for i, m in enumerate(self.modalities)]
        pooled = []
        for i, m in enumerate(self.modalities):
            others = [s for j, s in enumerate(sequences) if j != i] or [sequences[i]]
            context = torch.cat(others, dim=1)
            attended, _ = self.attend[m](sequences[i], context, context, need_weights=False)
            pooled.append((sequences[i] + attended).mean(dim=1))
        return torch.cat(pooled, dim=1)
