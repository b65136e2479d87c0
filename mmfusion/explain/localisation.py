"""How well a saliency map points at a known region (e.g. where the generator drew a finding)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage


@dataclass(frozen=True)
class Overlap:
    """mass: share of the map inside the region; lift: mass / region's share of the image
    (1 = no better than a flat map); hit: the map's maximum lies in the region (pointing game)."""

    mass: float
    lift: float
    hit: bool


def overlap(cam: np.ndarray, region: np.ndarray, tolerance_px: int = 0) -> Overlap:
    """Scores of a non-negative map against a boolean region of the same shape, the region grown
    by `tolerance_px` pixels (a Grad-CAM map is only as sharp as its feature grid)."""
    if cam.shape != region.shape:
        raise ValueError(f"map {cam.shape} and region {region.shape} differ in shape")
    if tolerance_px:
        square = np.ones((3, 3), dtype=bool)  # grows diagonally too
        region = ndimage.binary_dilation(region, square, iterations=tolerance_px)
    total = float(cam.sum())
    mass = float(cam[region].sum()) / total if total > 0 else 0.0
    area = float(region.mean())
    return Overlap(mass, mass / area if area > 0 else 0.0, bool(region.flat[int(cam.argmax())]))
