"""What the dataset checker learns about one file: readable or not (and why), content hash,
perceptual hash, and the metadata that can confound a label (`metadata_baseline.file_metadata`:
format, mode, bit depth, size, bytes; audio format, codec, sample rate, channels, duration) plus
loudness.

Readability is judged by the same readers training uses, so "readable here" means "trainable".
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from mmfusion.data.checker.metadata_baseline import file_metadata
from mmfusion.data.decoding.audio import load_wave
from mmfusion.data.decoding.window import CTWindow
from mmfusion.data.layouts.folders import AUDIO_EXTS
from mmfusion.data.leakage import file_sha256
from mmfusion.data.near_duplicates import image_phash
from mmfusion.errors import DataError


def _loudness(path: Path, silence_dbfs: float) -> dict[str, Any]:
    wave, _rate = load_wave(path, None, mono=False)  # raises DataError when undecodable
    peak = float(np.abs(wave).max())
    peak_dbfs = 20 * np.log10(peak) if peak > 0 else -np.inf
    return {
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
        if path.stat().st_size == 0:
            raise DataError(f"cannot read {path}: empty file")
        facts["sha256"] = file_sha256(path)
        # decoded first, as training does: its reader's message says why a file is unusable
        if facts["ext"] in AUDIO_EXTS:
            facts |= _loudness(path, silence_dbfs)
        else:
            facts["phash"] = image_phash(path, window)
        facts |= file_metadata(path)
    except DataError as err:
        facts["error"] = str(err)
    except OSError as err:
        facts["error"] = f"cannot read {path}: {err.strerror or err}"
    return facts
