"""Missing modalities: presence masks, filling in absent features, and modality dropout.

A presence mask is `{modality: bool Tensor (B,)}`; `None` means every modality is present.
Networks take it as `forward(inputs, present=None)` and must not read the values of an absent
modality (predict passes no tensor at all for a modality absent from the whole batch).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor, nn

from mmfusion.errors import ConfigError

Present = dict[str, Tensor]


def batch_size_of(inputs: Mapping[str, Tensor]) -> int:
    if not inputs:
        raise ConfigError("no modality given: at least one input is needed")
    return next(iter(inputs.values())).shape[0]


def is_present(present: Present | None, modality: str, inputs: Mapping[str, Tensor]) -> Tensor:
    """The (B,) bool mask of one modality; absent when it has no tensor at all."""
    if present is not None and modality in present:
        return present[modality].bool()
    reference = next(iter(inputs.values()))
    filled = modality in inputs
    return torch.full((reference.shape[0],), filled, dtype=torch.bool, device=reference.device)


def presence_mask(
    present: Present | None, modalities: Sequence[str], inputs: Mapping[str, Tensor]
) -> Tensor:
    """(B, M) float mask, 1 where the modality is there (see `is_present`)."""
    like = next(iter(inputs.values()))
    return torch.stack([is_present(present, m, inputs) for m in modalities], dim=1).to(like.dtype)


def like_any(inputs: Mapping[str, Tensor], modality: str) -> Tensor:
    """The modality's tensor, or zeros shaped like another modality's when it was not given."""
    if modality in inputs:
        return inputs[modality]
    return torch.zeros_like(next(iter(inputs.values())))


def with_missing(
    features: Mapping[str, Tensor], present: Present | None, missing: Mapping[str, Tensor]
) -> dict[str, Tensor]:
    """Every modality of `missing` ({modality: learned (D,) vector}) with its features where the
    sample has it and the learned vector where it does not."""
    batch = batch_size_of(features)
    filled = {}
    for m, token in missing.items():
        fill = token.to(next(iter(features.values())).dtype).expand(batch, -1)
        if m not in features:
            filled[m] = fill
            continue
        mask = is_present(present, m, features).unsqueeze(1)
        filled[m] = torch.where(mask, features[m], fill)
    return filled


class ModalityDropout(nn.Module):
    """Training-time mask: each sample loses each modality with probability p, never all.

    The model then learns to classify from any subset, which is what a patient without a CXR
    needs at inference time (MultiBench / ModDrop-style training).
    """

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ConfigError(f"model.modality_dropout={p}: use a probability in [0, 1)")
        self.p = p

    def forward(self, modalities: Sequence[str], batch: int, device: torch.device) -> Present:
        keep = torch.rand(batch, len(modalities), device=device) >= self.p
        lost_all = ~keep.any(dim=1)
        if lost_all.any():  # give each such sample back one modality, chosen uniformly
            chosen = torch.randint(len(modalities), (int(lost_all.sum()),), device=device)
            keep[lost_all.nonzero().squeeze(1), chosen] = True
        return {m: keep[:, i] for i, m in enumerate(modalities)}
