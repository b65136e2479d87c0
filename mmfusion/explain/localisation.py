"""How well a saliency map points at a known region (e.g. where the generator drew a finding).

`python -m mmfusion.localisation CKPT [--split test] [--alone]` scores the Grad-CAM maps
of a model trained on the synthetic data (which knows where it drew each finding) for every
correctly classified patient whose image shows one, as the callback computes them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

from mmfusion.errors import ConfigError
from mmfusion.evaluation.markdown import markdown_table, table_row

#: the loop's split name -> the generator's split folder
GENERATOR_SPLITS = {"train": "train", "val": "valid", "test": "test"}


@dataclass(frozen=True)
class Overlap:
    """mass: share of the map inside the region; lift: mass / region's share of the image
    (1 = no better than a flat map); hit: the map's maximum lies in the region (pointing game)."""

    mass: float
    lift: float
    hit: bool


def overlap(cam: np.ndarray, region: np.ndarray, tolerance_px: int = 0) -> Overlap:
    """Scores of a non-negative map against a boolean region of the same shape, the region grown
    by `tolerance_px` pixels (a Grad-CAM map is only as sharp as its feature grid)."""
    if cam.shape != region.shape:
        raise ValueError(f"map {cam.shape} and region {region.shape} differ in shape")
    if tolerance_px:
        square = np.ones((3, 3), dtype=bool)  # grows diagonally too
        region = ndimage.binary_dilation(region, square, iterations=tolerance_px)
    total = float(cam.sum())
    mass = float(cam[region].sum()) / total if total > 0 else 0.0
    area = float(region.mean())
    return Overlap(mass, mass / area if area > 0 else 0.0, bool(region.flat[int(cam.argmax())]))


def downsample_region(region: np.ndarray, size: int) -> np.ndarray:
    """A generated image's region at the model's input size (a divisor of its own): a pixel is
    inside when at least half of the block it replaces is."""
    factor = region.shape[0] // size
    if factor * size != region.shape[0]:
        raise ConfigError(f"cannot map a {region.shape[0]} px finding region onto {size} px inputs")
    return region.reshape(size, factor, size, factor).mean((1, 3)) >= 0.5


@dataclass(frozen=True)
class Localisation:
    """One modality's scores, each against the finding grown by `half_cell` px, and exactly."""

    modality: str
    grid: int
    half_cell: int
    grown: list[Overlap]
    exact: list[Overlap]

    def row(self) -> str:
        n = len(self.grown)
        mass = np.median([s.mass for s in self.grown])
        exact = np.median([s.mass for s in self.exact])
        above = sum(s.mass > 0.5 for s in self.grown)
        hits = sum(s.hit for s in self.grown)
        lift = np.median([s.lift for s in self.grown])
        cells = [self.modality, f"{self.grid} x {self.grid} / {self.half_cell} px", f"{mass:.2f}"]
        cells += [f"{exact:.2f}", f"{above}/{n}", f"{hits}/{n}", f"{lift:.1f}"]
        return table_row(cells)


COLUMNS = (
    "modality",
    "grid / half cell",
    "mass in finding + half cell (median)",
    "in the finding itself",
    "maps > 0.5",
    "max inside (+ half cell)",
    "lift (median)",
)
HEADER = markdown_table(COLUMNS, [])


def localise(
    ckpt: str | Path, split: str = "test", alone: bool = False, batch_size: int = 32
) -> list[Localisation]:
    """Grad-CAM (against the run's `data.healthy_class`, as the explain callback) of every
    correctly classified `split` patient whose CT / CXR shows its finding, scored per modality;
    `alone`: only patients whose finding no other modality shows."""
    import pandas as pd
    import torch
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    from mmfusion.data.loading import batch_loader
    from mmfusion.data.synthetic import finding_region
    from mmfusion.explain.gradcam import branch_cams
    from mmfusion.models.checkpoint import load_classifier

    if split not in GENERATOR_SPLITS:
        raise ConfigError(f"--split {split!r}: use one of {list(GENERATOR_SPLITS)}")
    model = load_classifier(ckpt)
    cfg = OmegaConf.create(model.hparams.run_config)
    datamodule = instantiate(cfg.data)
    spec = getattr(datamodule.layout, "spec", None)
    if spec is None:
        raise ConfigError(f"{ckpt} was not trained on data=synthetic: no known finding regions")
    datamodule.prepare_data()
    datamodule.setup("test")
    dataset = datamodule.datasets[split]
    healthy = OmegaConf.select(cfg, "data.healthy_class")
    reference = model.hparams.class_names.index(healthy) if healthy else None
    with torch.no_grad():
        preds = torch.cat([model(x).argmax(1) for x, _ in batch_loader(dataset, batch_size)])
    shown = pd.read_csv(datamodule.layout.root / "findings.csv", dtype={"stem": str})
    shown = shown[shown.split == GENERATOR_SPLITS[split]].set_index("stem")  # per modality
    results = []
    for modality in [m for m in ("ct", "cxr") if m in datamodule.modalities]:
        others = [f"{m}_shown" for m in ("ct", "cxr", "cough") if m != modality]
        picked, regions = [], []
        for i, sample in enumerate(dataset.samples):
            stem = sample.files[modality].stem
            if preds[i] != dataset.labels[i] or not shown.loc[stem, f"{modality}_shown"]:
                continue
            if alone and shown.loc[stem, others].any():
                continue
            region = finding_region(spec, GENERATOR_SPLITS[split], stem, modality)
            region = downsample_region(region, datamodule.decoding[modality].size)
            if region.any():  # a finding smaller than half a pixel of the input is not scored
                picked.append(i)
                regions.append(region)
        maps, grid = [], 0
        for start in range(0, len(picked), batch_size):
            rows = picked[start : start + batch_size]
            inputs, _ = dataset.__getitems__(rows)
            cams, grids = branch_cams(model, inputs, preds[rows].tolist(), reference)
            maps += list(cams[modality])
            grid = grids[modality]
        if picked:
            half = math.ceil(datamodule.decoding[modality].size / grid / 2)
            grown = [overlap(c, r, tolerance_px=half) for c, r in zip(maps, regions, strict=True)]
            exact = [overlap(c, r) for c, r in zip(maps, regions, strict=True)]
            results.append(Localisation(modality, grid, half, grown, exact))
    return results
