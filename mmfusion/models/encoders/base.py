"""What every encoder offers the networks and the explanations."""

from __future__ import annotations

from torch import Tensor, nn


class Encoder(nn.Module):
    """(B, C, H, W) -> pooled features (B, `out_features`).

    `tokens` gives the features before pooling, (B, N, `token_features`), for fusions that
    attend across positions; `stages` lists the spatial stages, shallow to deep, that Grad-CAM
    may read.
    """

    out_features: int
    token_features: int

    def use_tokens(self) -> None:
        """Called once when a fusion will read `tokens` instead of the pooled features."""

    def tokens(self, x: Tensor) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__} gives no tokens")

    def stages(self) -> list[nn.Module]:
        return [m for m in self.modules() if isinstance(m, nn.Conv2d)]
