"""The axial chest CT phantom and the findings drawn into it."""

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
    smooth_field,
)


def render_ct(rng: np.random.Generator, size: int, finding: str | None) -> np.ndarray:
    """Axial chest CT phantom; only the overlaid finding depends on ``finding``."""
    frng = finding_rng(rng)
    f = frame(rng, size, rot=0.08, shift=0.05, zoom=(0.9, 1.08))
    x, y, px = f.x, f.y, f.px
    bcx, bcy = rng.normal(0.0, 0.02, 2)
    bax, bay = rng.uniform(0.82, 0.95), rng.uniform(0.6, 0.72)
    soft = rng.uniform(0.44, 0.52)
    fat = soft - rng.uniform(0.1, 0.16)
    fat_w = rng.uniform(0.04, 0.09)
    body, _, _ = ellipse_mask(x, y, bcx, bcy, bax, bay, 0.0, px)
    inner, _, _ = ellipse_mask(x, y, bcx, bcy, bax - fat_w, bay - fat_w, 0.0, px)
    img = body * fat + inner * (soft - fat)

    # Heart (anterior = up) and lungs that wrap around it.
    hcx, hcy = bcx + rng.uniform(0.02, 0.1), bcy - rng.uniform(0.08, 0.18)
    hax, hay = rng.uniform(0.2, 0.26), rng.uniform(0.2, 0.26)
    heart, _, _ = ellipse_mask(x, y, hcx, hcy, hax, hay, rng.uniform(-0.3, 0.3), px)
    lung_val = rng.uniform(0.05, 0.12)
    lungs: list[tuple[np.ndarray, np.ndarray, np.ndarray, tuple]] = []
    for side in (-1.0, 1.0):
        ell = (
            bcx + side * bax * rng.uniform(0.4, 0.46),
            bcy + rng.uniform(-0.08, 0.02),
            bax * rng.uniform(0.28, 0.33),
            bay * rng.uniform(0.6, 0.68),
            side * rng.uniform(-0.05, 0.2),
        )
        m, u, v = ellipse_mask(x, y, *ell, px)
        m = m * inner * (1.0 - heart)
        lungs.append((m, u, v, ell))
    lung_all = np.maximum(lungs[0][0], lungs[1][0])
    img = lerp(img, lung_val + 0.02 * smooth_field(rng, x.shape[0]), lung_all)
    img = lerp(img, soft + rng.uniform(0.02, 0.06), heart * inner)

    # Spine, canal, aorta, rib cross-sections.
    sy = bcy + bay * rng.uniform(0.55, 0.65)
    sr = bay * rng.uniform(0.15, 0.19)
    vert, _, _ = ellipse_mask(x, y, bcx, sy, sr, sr * 0.9, 0.0, px)
    img = lerp(img, rng.uniform(0.78, 0.9), vert)
    canal, _, _ = ellipse_mask(x, y, bcx, sy + sr * 1.2, sr * 0.45, sr * 0.4, 0.0, px)
    img = lerp(img, soft - 0.05, canal)
    ar = rng.uniform(0.05, 0.07)
    aorta, _, _ = ellipse_mask(
        x, y, bcx + rng.uniform(0.08, 0.14), sy - sr - ar - 0.02, ar, ar, 0, px
    )
    img = lerp(img, soft + rng.uniform(0.06, 0.12), aorta)
    n_rib = int(rng.integers(8, 13))
    ang = rng.uniform(0, 2 * math.pi, n_rib)
    rib_pts = np.stack(
        [bcx + (bax - fat_w - 0.03) * np.cos(ang), bcy + (bay - fat_w - 0.03) * np.sin(ang)], 1
    )
    ribs = gaussian_blobs(f, rib_pts, rng.uniform(0.015, 0.025, n_rib)).max(0)
    img = img + 0.35 * ribs * inner

    # Small bright vessels inside both lungs (class-independent, far smaller than any nodule).
    for m, _, _, ell in lungs:
        k = int(rng.integers(4, 9))
        pts = in_ellipse(rng, ell, k, rho=(0.1, 0.85))
        dots = (
            gaussian_blobs(f, pts, rng.uniform(0.012, 0.022, k))
            * rng.uniform(0.2, 0.4, k)[:, None, None]
        )
        img = img + dots.sum(0) * m

    if finding is not None:
        img = _ct_finding(frng, img, f, finding, lungs, soft)
    return finish(rng, img, noise=(0.015, 0.04))


def _ct_finding(
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
        r = rng.uniform(0.12, 0.19)
        limit = max(0.0, 1.0 - r / min(ell[2], ell[3]) - 0.05)
        lobes = rng.uniform(0.02, 0.07), int(rng.integers(3, 7)), rng.uniform(0, 2 * math.pi)
        for _ in range(20):  # keep the mass in aerated lung, not hidden against the heart
            ((cx, cy),) = in_ellipse(rng, ell, 1, rho=(0.0, limit))
            dx, dy = x - cx, y - cy
            radius = r * (1.0 + lobes[0] * np.sin(lobes[1] * np.arctan2(dy, dx) + lobes[2]))
            mass = edge(np.sqrt(dx * dx + dy * dy) - radius, px, 1.5)
            if np.sum(mass * m) > 0.9 * np.sum(mass):
                break
        return lerp(img, rng.uniform(0.62, 0.76), mass * m)
    if finding == "Pneumonia":
        m, u, v, _ = lungs[int(rng.integers(2))]
        # Posterior (= lower in the image) part of one lung, with a wavy anterior border.
        border = rng.uniform(-0.25, 0.15) + rng.uniform(0.05, 0.12) * np.sin(
            rng.uniform(2.0, 5.0) * u + rng.uniform(0, 2 * math.pi)
        )
        region = np.clip((v - border) * 6.0, 0.0, 1.0) * m
        value = rng.uniform(0.5, 0.6) + 0.04 * smooth_field(rng, x.shape[0])
        return lerp(img, value, region * rng.uniform(0.88, 1.0))
    if finding == "covid":
        n = int(rng.integers(3, 7))
        sides = np.concatenate([[0, 1], rng.integers(0, 2, n - 2)])
        glass = np.zeros_like(img)
        for side in sides:
            m, _, _, ell = lungs[int(side)]
            lateral = math.pi if side == 0 else 0.0  # periphery, away from the mediastinum
            arc = (lateral - 2 * math.pi / 3, lateral + 2 * math.pi / 3)
            pts = in_ellipse(rng, ell, 1, rho=(0.6, 0.88), phi=arc)
            # Patches several pixels wide even at 32 px, so that they cannot pass for vessels:
            # the stated ceilings assume a shown finding is recognisable at the training size.
            blob = gaussian_blobs(f, pts, rng.uniform(0.09, 0.13, 1))[0]
            glass = np.maximum(glass, blob * rng.uniform(0.28, 0.38) * m)
        return img + glass * (1.0 + 0.25 * smooth_field(rng, x.shape[0]))
    raise ValueError(f"unknown finding {finding!r}")
