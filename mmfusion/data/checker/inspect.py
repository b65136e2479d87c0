"""What the dataset checker learns about one file: readable or not (and why), content hash,
perceptual hash, and the format facts that can confound a label (format, mode, size, sample
rate, channels, duration, loudness).

Readability is judged by the same readers training uses, so "readable here" means "trainable".
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from mmfusion.data.decoding.audio import load_wave
from mmfusion.data.decoding.images import read_image
from mmfusion.data.decoding.window import CTWindow
from mmfusion.data.layouts.folders import AUDIO_EXTS
from mmfusion.data.leakage import file_sha256
from mmfusion.errors import DataError

PHASH_SIZE = 64  # decoded side length the perceptual hash is computed from
# 16 x 16 = 256-bit pHash: re-encoded or resized copies stay within ~8 bits, while distinct chest
# images (which all look alike to a 64-bit hash: 2 bits apart at worst) stay 12+ bits apart
PHASH_BITS_SIDE = 16


def _image_facts(path: Path, window: CTWindow | None) -> dict[str, Any]:
    import imagehash

    decoded = read_image(path, PHASH_SIZE, window)  # raises DataError when unreadable
    if path.suffix.lower() == ".dcm":
        import pydicom

        header = pydicom.dcmread(path, stop_before_pixels=True)
        facts = {
            "format": "DICOM",
            "mode": "{}/{}".format(
                header.get("PhotometricInterpretation", "?"), header.get("BitsStored", "?")
            ),
            "width": int(header.get("Columns", 0)),
            "height": int(header.get("Rows", 0)),
        }
    else:
        with Image.open(path) as image:
            facts = {
                "format": image.format or path.suffix.lstrip(".").upper(),
                "mode": image.mode,
                "width": image.width,
                "height": image.height,
            }
    facts["phash"] = str(imagehash.phash(Image.fromarray(decoded), hash_size=PHASH_BITS_SIDE))
    return {"kind": "image", **facts}


def _audio_facts(path: Path, silence_dbfs: float) -> dict[str, Any]:
    import soundfile as sf

    wave, rate = load_wave(path, None, mono=False)
    try:
        audio_format = sf.info(path).format
    except Exception:  # formats only audioread opens
        audio_format = path.suffix.lstrip(".").upper()
    channels = 1 if wave.ndim == 1 else wave.shape[0]
    peak = float(np.abs(wave).max())
    peak_dbfs = 20 * np.log10(peak) if peak > 0 else -np.inf
    return {
        "kind": "audio",
        "format": audio_format,
        "sample_rate": int(rate),
        "channels": int(channels),
        "duration": float(wave.shape[-1] / rate),
        "peak_dbfs": round(float(peak_dbfs), 1) if np.isfinite(peak_dbfs) else None,
        "silent": bool(peak_dbfs < silence_dbfs),
    }


def inspect_file(
    path: Path, window: CTWindow | None = None, silence_dbfs: float = -60.0
) -> dict[str, Any]:
    """Facts about one file; `error` holds the reason when it cannot be used for training."""
    facts: dict[str, Any] = {"path": str(path), "ext": path.suffix.lower(), "error": None}
    try:
        if not path.is_file():
            raise DataError(f"cannot read {path}: not a file")
        facts["bytes"] = path.stat().st_size
        if facts["bytes"] == 0:
            raise DataError(f"cannot read {path}: empty file")
        facts["sha256"] = file_sha256(path)
        if facts["ext"] in AUDIO_EXTS:
            facts |= _audio_facts(path, silence_dbfs)
        else:
            facts |= _image_facts(path, window)
    except DataError as err:
        facts["error"] = str(err)
    except OSError as err:
        facts["error"] = f"cannot read {path}: {err.strerror or err}"
    return facts
