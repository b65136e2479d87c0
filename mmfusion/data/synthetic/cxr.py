"""The frontal (PA) chest X-ray phantom and the findings drawn into it."""

from __future__ import annotations

import math

import numpy as np

from mmfusion.data.synthetic.drawing import (
    Frame,
    edge,
    ellipse_mask,
    finding_rng,
    finish,
    frame,
    gaussian_blobs,
    in_ellipse,
    lerp,
    local_coords,
    smooth_field,
)


def _lung_cxr(x, y, ell, px) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Egg-shaped lung field: narrow apex, broad base."""
    u, v = local_coords(x, y, *ell)
    w = u / (0.95 + 0.25 * np.clip(v, -1.0, 1.0))
    r = np.sqrt(w * w + v * v)
    return edge((r - 1.0) * min(ell[2], ell[3]), px), u, v


def render_cxr(rng: np.random.Generator, size: int, finding: str | None) -> np.ndarray:
    """Frontal chest radiograph phantom (heart toward image right = patient's left)."""
    frng = finding_rng(rng)
    f = frame(rng, size, rot=0.06, shift=0.05, zoom=(0.9, 1.06))
    x, y, px = f.x, f.y, f.px
    soft = rng.uniform(0.46, 0.56)
    thorax, _, _ = ellipse_mask(
        x, y, 0.0, rng.uniform(0.1, 0.2), rng.uniform(0.9, 1.0), rng.uniform(1.0, 1.15), 0.0, px
    )
    img = rng.uniform(0.05, 0.15) + thorax * soft
    lung_val = rng.uniform(0.14, 0.22)
    lungs = []
    for side in (-1.0, 1.0):
        ell = (
            side * rng.uniform(0.34, 0.42),
            rng.uniform(-0.12, -0.02),
            rng.uniform(0.25, 0.31),
            rng.uniform(0.56, 0.66),
            side * rng.uniform(-0.04, 0.1),
        )
        m, u, v = _lung_cxr(x, y, ell, px)
        lungs.append([m * thorax, u, v, ell])
    lung_all = np.maximum(lungs[0][0], lungs[1][0])
    img = lerp(img, lung_val + 0.025 * smooth_field(rng, x.shape[0]), lung_all)

    # Mediastinum / spine band and the heart shadow, which overlap the medial lungs.
    med = edge(
        np.abs(x - rng.uniform(-0.03, 0.03)) - rng.uniform(0.08, 0.12) - 0.06 * (y + 1), px, 3
    )
    img = lerp(img, soft + rng.uniform(0.12, 0.2), med * thorax)
    hax, hay = rng.uniform(0.3, 0.37), rng.uniform(0.23, 0.29)
    heart, _, _ = ellipse_mask(
        x,
        y,
        rng.uniform(0.1, 0.18),
        rng.uniform(0.28, 0.38),
        hax,
        hay,
        rng.uniform(-0.35, -0.1),
        px,
    )
    img = lerp(img, soft + rng.uniform(0.12, 0.18), heart * 0.95)
    for lung in lungs:
        lung[0] = lung[0] * (1.0 - heart) * (1.0 - med)

    # Posterior rib arcs over both hemithoraces, and clavicles.
    n_rib = int(rng.integers(7, 10))
    y0 = np.linspace(-0.78, 0.42, n_rib) + rng.uniform(-0.03, 0.03, n_rib)
    bend = rng.uniform(0.6, 1.0)
    ax_ = np.abs(x) - 0.08
    offset = y - (-0.12 * ax_ + bend * ax_ * ax_)  # every rib is this curve shifted by y0
    j = np.clip(np.searchsorted(y0, offset), 1, n_rib - 1)
    dist = np.minimum(np.abs(offset - y0[j - 1]), np.abs(offset - y0[j]))
    thick = rng.uniform(0.022, 0.032)
    rib = np.exp(-((dist / thick) ** 2)) * (ax_ > 0) * thorax
    img = img + rib * rng.uniform(0.1, 0.16) * (0.35 + 0.65 * lung_all)
    cl_y = rng.uniform(-0.8, -0.7)
    clav = np.exp(-(((y - (cl_y - 0.15 * np.abs(x) + 0.1 * x * x)) / 0.035) ** 2))
    img = img + clav * (np.abs(x) < 0.7) * (np.abs(x) > 0.06) * rng.uniform(0.12, 0.2)

    if finding is not None:
        img = _cxr_finding(frng, img, f, finding, lungs, soft)
    return finish(rng, img, noise=(0.015, 0.035))


def _cxr_finding(
    rng: np.random.Generator,
    img: np.ndarray,
    f: Frame,
    finding: str,
    lungs: list,
    soft: float,
) -> np.ndarray:
    x, y, px = f.x, f.y, f.px
    if finding == "LungsCancer":
        m, _, _, ell = lungs[int(rng.integers(2))]
        r = rng.uniform(0.11, 0.17)
        # Upper/mid zone, lateral half, so the mass sits in aerated lung rather than behind heart.
        cx = ell[0] + math.copysign(rng.uniform(0.0, 0.4), ell[0]) * ell[2]
        cy = ell[1] + rng.uniform(-0.5, 0.3) * ell[3]
        d = np.sqrt((x - cx) ** 2 + (y - cy) ** 2)
        mass = edge(d - r, px, 2.0)
        return lerp(img, soft + rng.uniform(0.1, 0.2), mass * 0.92)
    if finding == "Pneumonia":
        m, u, v, _ = lungs[int(rng.integers(2))]
        border = rng.uniform(-0.1, 0.3) + rng.uniform(0.04, 0.1) * np.sin(
            rng.uniform(2.0, 5.0) * u + rng.uniform(0, 2 * math.pi)
        )
        region = np.clip((v - border) * 5.0, 0.0, 1.0) * m
        value = soft + rng.uniform(0.02, 0.1) + 0.04 * smooth_field(rng, x.shape[0])
        return lerp(img, value, region * rng.uniform(0.85, 0.95))
    if finding == "covid":
        haze = np.zeros_like(img)
        for m, _, _, ell in lungs:
            k = int(rng.integers(2, 4))
            lateral = (-0.6, 0.6) if ell[0] > 0 else (math.pi - 0.6, math.pi + 0.6)
            pts = in_ellipse(rng, ell, k, rho=(0.55, 0.85), phi=lateral)
            pts[:, 1] = np.maximum(pts[:, 1], ell[1] + 0.05)  # lower zones
            blobs = gaussian_blobs(f, pts, rng.uniform(0.1, 0.14, k)).max(0)
            haze = np.maximum(haze, blobs * m)
        return lerp(img, soft + 0.05, np.minimum(haze * rng.uniform(0.8, 1.0), 0.85))
    raise ValueError(f"unknown finding {finding!r}")
