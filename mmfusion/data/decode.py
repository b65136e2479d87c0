"""Turning one file into one 2-D array at the training size.

Images become uint8 (16-bit sources keep their depth until the final quantisation); audio
becomes a float16 time-frequency map. Every failure is a DataError naming the file.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from mmfusion.data.layout import AUDIO_EXTS
from mmfusion.errors import DataError


def _resize(array: np.ndarray, size: int) -> np.ndarray:
    """Antialiased bilinear resize of a float image to size x size."""
    resized = Image.fromarray(np.ascontiguousarray(array, dtype=np.float32), mode="F")
    return np.asarray(resized.resize((size, size), Image.BILINEAR), dtype=np.float32)


def _to_unit_float(image: Image.Image) -> np.ndarray:
    """Grayscale in [0, 1], keeping 16-bit depth."""
    if image.mode in {"I;16", "I;16B", "I;16L", "I"}:
        data = np.asarray(image, dtype=np.float32)
        top = 65535.0 if data.max(initial=0) > 255 or image.mode.startswith("I;16") else 255.0
        return np.clip(data / top, 0.0, 1.0)
    if image.mode == "F":
        data = np.asarray(image, dtype=np.float32)
        low, high = float(data.min()), float(data.max())
        return (data - low) / (high - low) if high > low else np.zeros_like(data)
    return np.asarray(image.convert("L"), dtype=np.float32) / 255.0


def read_image(path: Path, size: int) -> np.ndarray:
    """A grayscale image file as a size x size uint8 array."""
    try:
        with Image.open(path) as image:
            image.load()
            data = _to_unit_float(image)
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as err:
        raise DataError(f"cannot read image {path}: {err}") from err
    return np.round(_resize(data, size) * 255.0).astype(np.uint8)


def _loudest_window(wave: np.ndarray, length: int) -> np.ndarray:
    """The `length` samples with most energy (the cough), zero-padded around short clips."""
    if len(wave) <= length:
        pad = length - len(wave)
        return np.pad(wave, (pad // 2, pad - pad // 2))
    energy = np.concatenate([[0.0], np.cumsum(wave.astype(np.float64) ** 2)])
    start = int(np.argmax(energy[length:] - energy[:-length]))
    return wave[start : start + length]


@dataclass(frozen=True)
class LogMel:
    """Log-mel spectrogram in [0, 1] (80 dB below the clip's peak maps to 0)."""

    sample_rate: int = 16000
    duration: float = 2.0
    n_mels: int = 64
    n_fft: int = 1024
    hop_length: int = 256
    top_db: float = 80.0

    def features(self, wave: np.ndarray) -> np.ndarray:
        import librosa

        mel = librosa.feature.melspectrogram(
            y=wave,
            sr=self.sample_rate,
            n_fft=self.n_fft,
            hop_length=self.hop_length,
            n_mels=self.n_mels,
        )
        db = librosa.power_to_db(mel, ref=np.max, top_db=self.top_db)
        return (db + self.top_db) / self.top_db

    def params(self) -> dict:
        return {"kind": type(self).__name__, **asdict(self)}


@dataclass(frozen=True)
class MFCC(LogMel):
    """MFCCs, standardised per coefficient over the clip."""

    n_mfcc: int = 40

    def features(self, wave: np.ndarray) -> np.ndarray:
        import librosa

        mfcc = librosa.feature.mfcc(
            y=wave,
            sr=self.sample_rate,
            n_mfcc=self.n_mfcc,
            n_fft=self.n_fft,
            hop_length=self.hop_length,
            n_mels=self.n_mels,
        )
        return (mfcc - mfcc.mean(axis=1, keepdims=True)) / (mfcc.std(axis=1, keepdims=True) + 1e-6)


def read_audio(path: Path, features: LogMel, size: int) -> np.ndarray:
    """An audio file (any rate, mono or stereo, any length) as a size x size float16 map."""
    import librosa

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # librosa's audioread fallback notice
            wave, _ = librosa.load(path, sr=features.sample_rate, mono=True)
    except Exception as err:  # soundfile/audioread raise many unrelated types
        raise DataError(f"cannot read audio {path}: {err}") from err
    if wave.size == 0:
        raise DataError(f"cannot read audio {path}: no audio samples")
    clip = _loudest_window(wave, round(features.duration * features.sample_rate))
    spectrum = np.flipud(features.features(clip))  # low frequencies at the bottom, as usual
    return _resize(spectrum, size).astype(np.float16)


def read_file(path: Path, size: int, audio: LogMel) -> np.ndarray:
    """Any supported file: audio by extension, everything else as an image."""
    if not path.is_file():
        raise DataError(f"cannot read {path}: not a file")
    if path.stat().st_size == 0:
        raise DataError(f"cannot read {path}: empty file")
    if path.suffix.lower() in AUDIO_EXTS:
        return read_audio(path, audio, size)
    return read_image(path, size)
