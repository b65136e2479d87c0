"""Image primitives for the phantoms (normalised coordinates in [-1, 1], x right, y down)."""

from __future__ import annotations

import math
from functools import lru_cache
from typing import NamedTuple

import numpy as np


@lru_cache(maxsize=8)
def grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    c = (np.arange(size, dtype=np.float32) + 0.5) * (2.0 / size) - 1.0
    y, x = np.meshgrid(c, c, indexing="ij")
    x.setflags(write=False)
    y.setflags(write=False)
    return x, y


class Frame(NamedTuple):
    """Patient coordinates of every pixel under a random pose, plus that pose."""

    x: np.ndarray
    y: np.ndarray
    px: float  # pixel size in patient units
    pose: tuple[float, float, float, float, float]  # cos, sin, shift x, shift y, zoom

    def to_image(self, pts: np.ndarray) -> np.ndarray:
        """Map (k, 2) patient points back to image coordinates."""
        c, s, sx, sy, z = self.pose
        u, v = pts[:, 0], pts[:, 1]
        return np.stack([sx + z * (c * u - s * v), sy + z * (s * u + c * v)], axis=1)


def frame(
    rng: np.random.Generator, size: int, rot: float, shift: float, zoom: tuple[float, float]
) -> Frame:
    """Random patient pose (rotation, shift, zoom): anatomy is drawn in patient coordinates."""
    x, y = grid(size)
    a = rng.uniform(-rot, rot)
    sx, sy = (float(v) for v in rng.uniform(-shift, shift, 2))
    z = rng.uniform(*zoom)
    c, s = math.cos(a), math.sin(a)
    xp = (c * (x - sx) + s * (y - sy)) / z
    yp = (-s * (x - sx) + c * (y - sy)) / z
    return Frame(xp, yp, 2.0 / (size * z), (c, s, sx, sy, z))


def local_coords(
    x: np.ndarray, y: np.ndarray, cx: float, cy: float, ax: float, ay: float, th: float
):
    c, s = math.cos(th), math.sin(th)
    dx, dy = x - float(cx), y - float(cy)
    return (c * dx + s * dy) / float(ax), (-s * dx + c * dy) / float(ay)


def ellipse_mask(
    x: np.ndarray, y: np.ndarray, cx: float, cy: float, ax: float, ay: float, th: float, px: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Anti-aliased ellipse mask plus its local (u, v) coordinates (unit circle = boundary)."""
    u, v = local_coords(x, y, cx, cy, ax, ay, th)
    r = np.sqrt(u * u + v * v)
    return edge((r - 1.0) * min(ax, ay), px), u, v


def edge(dist: np.ndarray, px: float, width: float = 1.0) -> np.ndarray:
    """Signed distance (negative inside) -> soft 0..1 mask with ~``width`` pixel transition."""
    return np.clip(0.5 - dist / (px * width), 0.0, 1.0)


def gaussian_blobs(f: Frame, pts: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """(k, H, W) isotropic Gaussians at patient points ``pts`` (k, 2) with widths ``sigma`` (k,).

    Evaluated separably in image coordinates (the pose is a similarity transform), which is
    much faster than k full-image exponentials.
    """
    size = f.x.shape[0]
    c = grid(size)[0][0]
    img_pts = f.to_image(np.asarray(pts, dtype=np.float64)).astype(np.float32)
    inv = (1.0 / (2.0 * (np.asarray(sigma) * f.pose[4]) ** 2)).astype(np.float32)[:, None]
    gx = np.exp(-((c[None] - img_pts[:, :1]) ** 2) * inv)
    gy = np.exp(-((c[None] - img_pts[:, 1:]) ** 2) * inv)
    return gy[:, :, None] * gx[:, None, :]


def in_ellipse(
    rng: np.random.Generator,
    ell: tuple[float, float, float, float, float],
    n: int,
    rho: tuple[float, float] = (0.0, 1.0),
    phi: tuple[float, float] = (0.0, 2 * math.pi),
) -> np.ndarray:
    """Draw n points uniform-by-area in the ring rho of ellipse ``(cx, cy, ax, ay, th)``."""
    cx, cy, ax, ay, th = ell
    r = np.sqrt(rng.uniform(rho[0] ** 2, rho[1] ** 2, n))
    a = rng.uniform(*phi, n)
    u, v = r * np.cos(a) * ax, r * np.sin(a) * ay
    c, s = math.cos(th), math.sin(th)
    return np.stack([cx + c * u - s * v, cy + s * u + c * v], axis=1)


def lerp(img: np.ndarray, value: float | np.ndarray, alpha: np.ndarray) -> np.ndarray:
    return img + (value - img) * alpha


def smooth_field(rng: np.random.Generator, size: int, k: int = 4) -> np.ndarray:
    """Random low-frequency texture in about [-1, 1]: a few plane waves, built separably."""
    c = grid(size)[0][0]
    f = rng.uniform(1.5, 6.0, k)
    a = rng.uniform(0, 2 * math.pi, k)
    ph = rng.uniform(0, 2 * math.pi, k)
    wx = (f * np.cos(a))[:, None] * c[None]  # (k, W)
    wy = (f * np.sin(a))[:, None] * c[None] + ph[:, None]  # (k, H)
    cx, sx = np.cos(wx).astype(np.float32), np.sin(wx).astype(np.float32)
    cy, sy = np.cos(wy).astype(np.float32), np.sin(wy).astype(np.float32)
    return (np.einsum("kh,kw->hw", cy, cx) - np.einsum("kh,kw->hw", sy, sx)) / math.sqrt(k)


def finish(rng: np.random.Generator, img: np.ndarray, noise: tuple[float, float]) -> np.ndarray:
    """Class-independent acquisition: gain/offset/gamma jitter, Gaussian noise, 8-bit quantise."""
    x, y = grid(img.shape[0])
    gx, gy = rng.uniform(-0.04, 0.04, 2)
    img = img + gx * x + gy * y
    img = (img - 0.5) * rng.uniform(0.85, 1.15) + 0.5 + rng.uniform(-0.06, 0.06)
    img = np.clip(img, 0.0, 1.0) ** rng.uniform(0.85, 1.18)
    img = img + rng.standard_normal(img.shape, dtype=np.float32) * rng.uniform(*noise)
    return (np.clip(img, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def finding_rng(rng: np.random.Generator) -> np.random.Generator:
    """Separate stream for the finding, so showing it leaves every other draw unchanged."""
    return np.random.default_rng(int(rng.integers(2**63)))
