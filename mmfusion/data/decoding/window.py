"""The CT intensity window: Hounsfield units -> [0, 1]."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class CTWindow:
    """A CT intensity window in Hounsfield units (default: lung window, centre -600, width 1500).

    DICOM CT is rescaled to HU with its RescaleSlope / RescaleIntercept before windowing.
    `png_hu_offset` says how 16-bit PNG / TIFF CT stores HU (value - offset = HU, commonly 1024
    or 32768); when None such images are scaled over their full 16-bit range instead, since
    their units are unknown.
    """

    center: float = -600.0
    width: float = 1500.0
    png_hu_offset: int | None = None

    def apply(self, hu: np.ndarray) -> np.ndarray:
        low = self.center - self.width / 2
        return np.clip((hu - low) / self.width, 0.0, 1.0).astype(np.float32)

    def params(self) -> dict:
        return {"kind": type(self).__name__, **asdict(self)}
