"""Image files (PNG, JPEG, TIFF, BMP; DICOM through `dicom`) -> a grayscale uint8 array.

16-bit sources and DICOM keep their depth until windowing and the final quantisation.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from mmfusion.data.decoding.dicom import read_dicom
from mmfusion.data.decoding.window import CTWindow
from mmfusion.errors import DataError


def resize(array: np.ndarray, size: int) -> np.ndarray:
    """Antialiased bilinear resize of a float image to size x size."""
    resized = Image.fromarray(np.ascontiguousarray(array, dtype=np.float32), mode="F")
    return np.asarray(resized.resize((size, size), Image.BILINEAR), dtype=np.float32)


SIXTEEN_BIT_MODES = frozenset({"I;16", "I;16B", "I;16L", "I"})


def to_unit_float(image: Image.Image, window: CTWindow | None = None) -> np.ndarray:
    """Grayscale in [0, 1], keeping 16-bit depth (and windowing it when its HU offset is known)."""
    if image.mode in SIXTEEN_BIT_MODES:
        data = np.asarray(image, dtype=np.float32)
        if window is not None and window.png_hu_offset is not None:
            return window.apply(data - window.png_hu_offset)
        top = 65535.0 if data.max(initial=0) > 255 or image.mode.startswith("I;16") else 255.0
        return np.clip(data / top, 0.0, 1.0)
    if image.mode == "F":
        data = np.asarray(image, dtype=np.float32)
        low, high = float(data.min()), float(data.max())
        return (data - low) / (high - low) if high > low else np.zeros_like(data)
    return np.asarray(image.convert("L"), dtype=np.float32) / 255.0


def centre_crop(array: np.ndarray, fraction: float) -> np.ndarray:
    """The central `fraction` of the image's height and width (1.0: the whole image)."""
    if fraction >= 1.0:
        return array
    height, width = array.shape
    h, w = max(1, round(height * fraction)), max(1, round(width * fraction))
    top, left = (height - h) // 2, (width - w) // 2
    return array[top : top + h, left : left + w]


def square_crop(array: np.ndarray) -> np.ndarray:
    """The central square of the long side (torchxrayvision's XRayCenterCrop)."""
    height, width = array.shape
    side = min(height, width)
    top, left = height // 2 - side // 2, width // 2 - side // 2
    return array[top : top + side, left : left + side]


def read_image(
    path: Path, size: int, window: CTWindow | None = None, crop: float = 1.0, square: bool = False
) -> np.ndarray:
    """A grayscale image file (DICOM included), its central square if `square`, then its central
    `crop` fraction, as a size x size uint8 array."""
    if path.suffix.lower() == ".dcm":
        data = read_dicom(path, window)
    else:
        try:
            with Image.open(path) as image:
                image.load()
                data = to_unit_float(image, window)
        except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as err:
            raise DataError(f"cannot read image {path}: {err}") from err
    data = square_crop(data) if square else data
    return np.round(resize(centre_crop(data, crop), size) * 255.0).astype(np.uint8)
