"""Training augmentations on batched tensors, so they run wherever the batch is (GPU or CPU)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class BatchAugment(nn.Module):
    """Per-sample random shift and intensity jitter; time/frequency masks on spectrograms.

    The shift is kept small and there is no flip: laterality matters in chest images.
    """

    def __init__(
        self,
        max_shift: float = 0.06,
        intensity: float = 0.1,
        spec_mask: float = 0.15,
        spectrogram_modalities: tuple[str, ...] = ("cough",),
    ) -> None:
        super().__init__()
        self.max_shift = max_shift
        self.intensity = intensity
        self.spec_mask = spec_mask
        self.spectrogram_modalities = spectrogram_modalities

    def _shift(self, x: Tensor) -> Tensor:
        batch = x.shape[0]
        theta = torch.zeros(batch, 2, 3, device=x.device, dtype=x.dtype)
        theta[:, 0, 0] = theta[:, 1, 1] = 1.0
        theta[:, :, 2] = (torch.rand(batch, 2, device=x.device) * 2 - 1) * self.max_shift * 2
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        return F.grid_sample(x, grid, padding_mode="border", align_corners=False)

    def _jitter(self, x: Tensor) -> Tensor:
        shape = (x.shape[0], 1, 1, 1)
        gain = 1 + (torch.rand(shape, device=x.device) * 2 - 1) * self.intensity
        bias = (torch.rand(shape, device=x.device) * 2 - 1) * self.intensity * 0.5
        return x * gain + bias

    def _mask(self, x: Tensor) -> Tensor:
        """SpecAugment-style: zero one random band of frequencies and one of time per sample."""
        batch, _, height, width = x.shape
        keep = torch.ones_like(x)
        for axis, size in ((2, height), (3, width)):
            length = (torch.rand(batch, device=x.device) * self.spec_mask * size).long()
            start = (torch.rand(batch, device=x.device) * (size - length)).long()
            pos = torch.arange(size, device=x.device)
            band = (pos >= start[:, None]) & (pos < (start + length)[:, None])
            band = band[:, None, :, None] if axis == 2 else band[:, None, None, :]
            keep = keep * (~band).to(x.dtype)
        return x * keep

    def forward(self, inputs: dict[str, Tensor]) -> dict[str, Tensor]:
        out = {}
        for modality, x in inputs.items():
            if modality in self.spectrogram_modalities:
                out[modality] = self._mask(self._jitter(x))
            else:
                out[modality] = self._jitter(self._shift(x))
        return out
