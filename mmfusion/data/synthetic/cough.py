"""The cough recording and the findings mixed into it."""

from __future__ import annotations

import math

import numpy as np
from scipy import fft as sp_fft
from scipy import signal

from mmfusion.data.synthetic.drawing import finding_rng


def _burst(n: int, sr: int, attack: float, tau: float) -> np.ndarray:
    """Fast-attack, exponential-decay envelope."""
    t = np.arange(n) / sr
    return np.minimum(t / attack, 1.0) * np.exp(-np.maximum(t - attack, 0.0) / tau)


def _band_noise(
    rng: np.random.Generator, n: int, sr: int, lo: float, hi: float | None
) -> np.ndarray:
    """Unit-variance noise band-limited to [lo, hi] Hz (high-pass if hi is None), via FFT."""
    m = sp_fft.next_fast_len(n, real=True)
    spec = sp_fft.rfft(rng.standard_normal(m))
    freq = sp_fft.rfftfreq(m, 1.0 / sr)
    gain = np.clip((freq - 0.8 * lo) / (0.4 * lo), 0.0, 1.0)
    if hi is not None:
        gain *= np.clip((1.2 * hi - freq) / (0.4 * hi), 0.0, 1.0)
    z = sp_fft.irfft(spec * gain, m)[:n]
    return z / (np.std(z) + 1e-12)


def render_cough(rng: np.random.Generator, sr: int, finding: str | None) -> np.ndarray:
    """Cough recording in [-1, 1]; duration, level and background are class-independent."""
    frng = finding_rng(rng)
    dur = rng.uniform(1.0, 2.0)
    n = round(dur * sr)
    a = rng.uniform(0.0, 0.95)
    bg = signal.lfilter([1.0 - a], [1.0, -a], rng.standard_normal(n))
    out = bg / (np.std(bg) + 1e-12) * 10 ** rng.uniform(-2.6, -1.6)

    onset = rng.uniform(0.02, 0.3)
    for _ in range(int(rng.integers(1, 3))):
        length = rng.uniform(0.15, 0.35)
        i0 = int(onset * sr)
        k = min(int(length * sr), n - i0)
        if k > 0:
            env = _burst(k, sr, rng.uniform(0.004, 0.015), rng.uniform(0.04, 0.11))
            noise = _band_noise(rng, k, sr, rng.uniform(150, 400), rng.uniform(2500, 6000))
            out[i0 : i0 + k] += env * noise * rng.uniform(0.08, 0.16)
        onset += length + rng.uniform(0.05, 0.2)

    if finding is not None:
        out = out + _cough_finding(frng, n, sr, finding)
    out = out * rng.uniform(0.5, 1.0)
    peak = float(np.max(np.abs(out)))
    return out * (0.97 / peak) if peak > 0.97 else out


def _place(rng: np.random.Generator, n: int, sr: int, length: float) -> int:
    latest = max(0.0, n / sr - length - 0.03)
    return int(rng.uniform(min(0.03, latest), latest) * sr)


def _cough_finding(rng: np.random.Generator, n: int, sr: int, finding: str) -> np.ndarray:
    out = np.zeros(n)
    if finding == "covid":
        # A run of short, dry, high-passed bursts with regular gaps.
        k = int(rng.integers(4, 8))
        lengths = rng.uniform(0.02, 0.04, k)
        gaps = rng.uniform(0.035, 0.07, k)
        start = _place(rng, n, sr, float(np.sum(lengths + gaps)))
        cutoff = rng.uniform(2000, 3000)
        level = rng.uniform(0.12, 0.2)
        for length, gap in zip(lengths, gaps, strict=True):
            m = min(int(length * sr), n - start)
            if m <= 0:
                break
            env = _burst(m, sr, 0.002, length / 3.0)
            out[start : start + m] += env * _band_noise(rng, m, sr, cutoff, None) * level
            start += int((length + gap) * sr)
        return out
    if finding == "Pneumonia":
        # Wet crackles: many short damped clicks scattered over a stretch of the recording.
        k = int(rng.integers(30, 81))
        span = rng.uniform(0.3, 0.8)
        start = _place(rng, n, sr, span + 0.01)
        L = int(0.016 * sr)
        t = np.arange(L) / sr
        freq = rng.uniform(200, 900, k)[:, None]
        tau = rng.uniform(0.0015, 0.004, k)[:, None]
        amp = rng.uniform(0.1, 0.35, k)[:, None] * rng.choice([-1.0, 1.0], k)[:, None]
        clicks = (
            amp * np.exp(-t / tau) * np.sin(2 * math.pi * freq * t + rng.uniform(0, 6.3, (k, 1)))
        )
        idx = start + (rng.uniform(0.0, span, k) * sr).astype(np.int64)[:, None] + np.arange(L)
        padded = np.zeros(max(n, int(idx.max()) + 1))
        np.add.at(padded, idx, clicks)
        return padded[:n]
    if finding == "LungsCancer":
        # Hoarse tonal segment (wheeze): harmonic tone with vibrato and rough amplitude.
        length = rng.uniform(0.3, 0.7)
        m = int(length * sr)
        start = _place(rng, n, sr, length)
        m = min(m, n - start)
        t = np.arange(m) / sr
        f0 = rng.uniform(300, 900)
        f = f0 * (1 + rng.uniform(0.01, 0.03) * np.sin(2 * math.pi * rng.uniform(4, 7) * t))
        phase = 2 * math.pi * np.cumsum(f) / sr
        tilt = rng.uniform(1.0, 1.5)
        harmonics = [h for h in range(1, 5) if h * f0 < 0.45 * sr]
        tone = sum(np.sin(h * phase + rng.uniform(0, 6.3)) / h**tilt for h in harmonics)
        fade = min(int(0.04 * sr), m // 2)
        env = np.ones(m)
        if fade > 0:
            ramp = 0.5 - 0.5 * np.cos(np.linspace(0, math.pi, fade))
            env[:fade], env[m - fade :] = ramp, ramp[::-1]
        rough = 1.0 + 0.3 * _band_noise(rng, m, sr, 20.0, 80.0) / 3.0
        out[start : start + m] = tone * env * rough * rng.uniform(0.1, 0.2)
        return out
    raise ValueError(f"unknown finding {finding!r}")
