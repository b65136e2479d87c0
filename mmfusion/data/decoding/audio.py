"""Audio files (WAV, FLAC, OGG, MP3 through soundfile / librosa) -> a float16 time-frequency map."""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from mmfusion.data.decoding.images import resize
from mmfusion.errors import DataError


def loudest_window(wave: np.ndarray, length: int) -> np.ndarray:
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

        mel = librosa.feature.melspectrogram(y=wave, **self.mel_options())
        db = librosa.power_to_db(mel, ref=np.max, top_db=self.top_db)
        return (db + self.top_db) / self.top_db

    def mel_options(self) -> dict:
        """The mel filter bank's options, shared by the features built on it."""
        return dict(
            sr=self.sample_rate, n_fft=self.n_fft, hop_length=self.hop_length, n_mels=self.n_mels
        )

    def params(self) -> dict:
        return {"kind": type(self).__name__, **asdict(self)}


@dataclass(frozen=True)
class MFCC(LogMel):
    """MFCCs, standardised per coefficient over the clip."""

    n_mfcc: int = 40

    def features(self, wave: np.ndarray) -> np.ndarray:
        import librosa

        mfcc = librosa.feature.mfcc(y=wave, n_mfcc=self.n_mfcc, **self.mel_options())
        return (mfcc - mfcc.mean(axis=1, keepdims=True)) / (mfcc.std(axis=1, keepdims=True) + 1e-6)


@dataclass(frozen=True)
class ASTFilterbank:
    """The Audio Spectrogram Transformer's own input (AudioSet-trained at 16 kHz): Kaldi-style
    log-mel filter bank, 25 ms windows every 10 ms, `num_mel_bins` bins, padded or cut to
    `max_length` frames (10.24 s), computed by transformers' `ASTFeatureExtractor` and kept as
    (frames, bins), not resized. Not normalised here: the model's mean and std are the decoding
    spec's fixed normalisation (`mmfusion.models.encoders.audio_transformer`)."""

    #: the map has the model's own shape (frames, bins), whatever the decoding's `size`
    own_shape: ClassVar[bool] = True
    sample_rate: int = 16000
    num_mel_bins: int = 128
    max_length: int = 1024

    @property
    def duration(self) -> float:
        return self.max_length / 100  # 10 ms hop

    def features(self, wave: np.ndarray) -> np.ndarray:
        from transformers import ASTFeatureExtractor

        extractor = ASTFeatureExtractor(
            sampling_rate=self.sample_rate,
            num_mel_bins=self.num_mel_bins,
            max_length=self.max_length,
            do_normalize=False,
        )
        values = extractor(wave, sampling_rate=self.sample_rate, return_tensors="np")
        return np.asarray(values["input_values"][0], dtype=np.float32)

    def params(self) -> dict:
        return {"kind": type(self).__name__, **asdict(self)}


def audio_failure(path: Path, err: Exception) -> str:
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
        raise DataError(f"cannot read audio {path}: {audio_failure(path, err)}") from err
    if wave.size == 0:
        raise DataError(f"cannot read audio {path}: no audio samples")
    return wave, int(rate)


def read_audio(path: Path, features: LogMel | ASTFilterbank, size: int) -> np.ndarray:
    """An audio file (any rate, mono or stereo, any length) as a size x size float16 map (a
    pretrained model's features: its own shape)."""
    wave, _ = load_wave(path, features.sample_rate)
    clip = loudest_window(wave, round(features.duration * features.sample_rate))
    if getattr(features, "own_shape", False):
        return features.features(clip).astype(np.float16)
    spectrum = np.flipud(features.features(clip))  # low frequencies at the bottom, as usual
    return resize(spectrum, size).astype(np.float16)
