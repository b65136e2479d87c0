"""Tensor fusion in low rank (LMF: Liu et al., "Efficient Low-rank Multimodal Fusion with
Modality-Specific Factors", ACL 2018)."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

from mmfusion.models.contracts import Presence
from mmfusion.models.missing import with_missing


class LowRankTensorFusion(nn.Module):
    """The outer product of the modalities' features, each with a 1 appended (so every subset's
    product is kept, unimodal terms included), mapped linearly to `out_features` through `rank`
    modality-specific factors, without ever forming the product tensor.

    Each modality's features are first projected to `dim` and batch-normalised (a fresh encoder's
    features barely vary between samples; see `ModalityTokens`); an absent modality's projected
    features are a learned missing-modality vector.
    """

    def __init__(
        self, in_features: Mapping[str, int], dim: int = 64, rank: int = 4, out_features: int = 128
    ) -> None:
        super().__init__()
        self.modalities = list(in_features)
        self.projections = nn.ModuleDict(
            {
                m: nn.Sequential(nn.Linear(width, dim), nn.BatchNorm1d(dim))
                for m, width in in_features.items()
            }
        )
        self.missing = nn.ParameterDict({m: nn.Parameter(torch.zeros(dim)) for m in in_features})
        self.factors = nn.ParameterDict(
            {m: nn.Parameter(torch.empty(rank, dim + 1, out_features)) for m in in_features}
        )
        self.rank_weights = nn.Parameter(torch.empty(1, rank))
        self.bias = nn.Parameter(torch.zeros(out_features))
        # unit-scale factors: each modality's term, and so their product, starts near unit
        # variance (Xavier on the 3-D factor, as the paper's code does, makes the product of three
        # modalities ~1e-3 and the output all but constant at the start)
        for factor in self.factors.values():
            nn.init.normal_(factor, std=(dim + 1) ** -0.5)
        nn.init.normal_(self.rank_weights, std=rank**-0.5)
        self.out_features = out_features

    def forward(self, features: dict[str, Tensor], present: Presence = None) -> Tensor:
        projected = {m: self.projections[m](x) for m, x in features.items()}
        filled = with_missing(projected, present, self.missing)
        product: Tensor | None = None
        for m in self.modalities:
            x = filled[m]
            augmented = torch.cat([torch.ones_like(x[:, :1]), x], dim=1)  # (B, dim + 1)
            factor = torch.matmul(augmented, self.factors[m])  # (rank, B, out)
            product = factor if product is None else product * factor
        fused = torch.matmul(self.rank_weights, product.permute(1, 0, 2)).squeeze(1)
        return fused + self.bias
