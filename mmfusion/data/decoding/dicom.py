"""DICOM slices -> [0, 1]: CT through its Hounsfield window, other modalities through their VOI."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mmfusion.data.decoding.window import CTWindow
from mmfusion.errors import DataError


def dicom_pixels(path: Path):
    """(dataset, 2-D pixel array): the middle frame of a multi-frame file, gray from colour."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        dataset = pydicom.dcmread(path)
    except (InvalidDicomError, OSError, ValueError, EOFError) as err:
        raise DataError(f"cannot read DICOM {path}: {err}") from err
    if "PixelData" not in dataset:
        raise DataError(f"cannot read DICOM {path}: no pixel data (a report or structure file?)")
    try:
        pixels = dataset.pixel_array
    except Exception as err:  # pydicom's pixel handlers raise many types (codec missing, ...)
        raise DataError(f"cannot read DICOM {path}: pixel data unreadable: {err}") from err
    colour = int(dataset.get("SamplesPerPixel", 1)) > 1
    if pixels.ndim == (4 if colour else 3):
        pixels = pixels[len(pixels) // 2]
    if colour:
        pixels = pixels.mean(axis=-1)
    return dataset, pixels


def read_dicom(path: Path, window: CTWindow | None) -> np.ndarray:
    """A DICOM slice in [0, 1]: CT in HU through `window`, other modalities through their VOI."""
    from pydicom.pixels import apply_modality_lut, apply_voi_lut

    dataset, pixels = dicom_pixels(path)
    values = apply_modality_lut(pixels, dataset).astype(np.float32)  # HU for CT
    if window is not None and dataset.get("Modality", "CT") == "CT":
        return window.apply(values)
    values = np.asarray(apply_voi_lut(values, dataset), dtype=np.float32)
    low, high = float(values.min()), float(values.max())
    unit = (values - low) / (high - low) if high > low else np.zeros_like(values)
    return 1.0 - unit if dataset.get("PhotometricInterpretation") == "MONOCHROME1" else unit
