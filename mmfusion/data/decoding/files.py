"""Turning one file into one 2-D array at the training size.

Images become uint8 (16-bit sources and DICOM keep their depth until windowing and the final
quantisation); audio becomes a float16 time-frequency map. Every failure is a DataError naming
the file and the reason.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from mmfusion.data.layouts.folders import AUDIO_EXTS
from mmfusion.errors import DataError


def _resize(array: np.ndarray, size: int) -> np.ndarray:
    """Antialiased bilinear resize of a float image to size x size."""
    resized = Image.fromarray(np.ascontiguousarray(array, dtype=np.float32), mode="F")
    return np.asarray(resized.resize((size, size), Image.BILINEAR), dtype=np.float32)


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


SIXTEEN_BIT_MODES = frozenset({"I;16", "I;16B", "I;16L", "I"})


def _to_unit_float(image: Image.Image, window: CTWindow | None = None) -> np.ndarray:
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


def read_image(path: Path, size: int, window: CTWindow | None = None) -> np.ndarray:
    """A grayscale image file (DICOM included) as a size x size uint8 array."""
    if path.suffix.lower() == ".dcm":
        data = read_dicom(path, window)
    else:
        try:
            with Image.open(path) as image:
                image.load()
                data = _to_unit_float(image, window)
        except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as err:
            raise DataError(f"cannot read image {path}: {err}") from err
    return np.round(_resize(data, size) * 255.0).astype(np.uint8)


def _dicom_pixels(path: Path):
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

    dataset, pixels = _dicom_pixels(path)
    values = apply_modality_lut(pixels, dataset).astype(np.float32)  # HU for CT
    if window is not None and dataset.get("Modality", "CT") == "CT":
        return window.apply(values)
    values = np.asarray(apply_voi_lut(values, dataset), dtype=np.float32)
    low, high = float(values.min()), float(values.max())
    unit = (values - low) / (high - low) if high > low else np.zeros_like(values)
    return 1.0 - unit if dataset.get("PhotometricInterpretation") == "MONOCHROME1" else unit


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


def _audio_failure(path: Path, err: Exception) -> str:
    """Why a file is not audio: soundfile's reason when it has one (audioread's is often empty)."""
    import soundfile as sf

    try:
        sf.info(path)
    except Exception as sf_err:
        reason = str(sf_err).rsplit(": ", 1)[-1]
        if "does not exist" in reason:  # libsndfile's words for MP3 data it cannot parse
            reason = "unrecognised or corrupt audio data"
        return f"not decodable audio ({reason})"
    return str(err) or type(err).__name__


def load_wave(path: Path, sample_rate: int | None, mono: bool = True) -> tuple[np.ndarray, int]:
    """(samples, rate) of an audio file, resampled unless `sample_rate` is None."""
    import librosa

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # librosa's audioread fallback notice
            wave, rate = librosa.load(path, sr=sample_rate, mono=mono)
    except Exception as err:  # soundfile/audioread raise many unrelated types
        raise DataError(f"cannot read audio {path}: {_audio_failure(path, err)}") from err
    if wave.size == 0:
        raise DataError(f"cannot read audio {path}: no audio samples")
    return wave, int(rate)


def read_audio(path: Path, features: LogMel, size: int) -> np.ndarray:
    """An audio file (any rate, mono or stereo, any length) as a size x size float16 map."""
    wave, _ = load_wave(path, features.sample_rate)
    clip = _loudest_window(wave, round(features.duration * features.sample_rate))
    spectrum = np.flipud(features.features(clip))  # low frequencies at the bottom, as usual
    return _resize(spectrum, size).astype(np.float16)


def read_file(path: Path, size: int, audio: LogMel, window: CTWindow | None = None) -> np.ndarray:
    """Any supported file: audio by extension, everything else as an image (`window`: CT only)."""
    if not path.is_file():
        raise DataError(f"cannot read {path}: not a file")
    if path.stat().st_size == 0:
        raise DataError(f"cannot read {path}: empty file")
    if path.suffix.lower() in AUDIO_EXTS:
        return read_audio(path, audio, size)
    return read_image(path, size, window)
