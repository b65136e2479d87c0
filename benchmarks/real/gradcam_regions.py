"""Where a real-data image model looks: Grad-CAM mass in the central region vs the border.

    python benchmarks/real/gradcam_regions.py CKPT MANIFEST --test-fold K [--central 0.75]
        [--modality cxr] [--json OUT]

For each patient of test fold K, Grad-CAM of the predicted class (`mmfusion.explain.gradcam`,
the maps the training run's explain callback draws), and its share of mass inside the centred
rectangle spanning `--central` of the width and height (the region that the border-only control
blacks out: the lungs, on a chest X-ray) vs outside it. Per true class: mean mass inside, its
lift (mass / area share: 1 = no better than a flat map), and how often the map peaks inside.
A model looking at the lungs has lift > 1; one reading corners, text or the collimator edge has
lift < 1 there. Reading the images as the training run did: `data.image_size` from the
checkpoint's config.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from mmfusion.data.decoding.spec import DecodingSpec
from mmfusion.data.layouts.manifest import ManifestLayout
from mmfusion.explain.gradcam import branch_cams
from mmfusion.explain.localisation import overlap
from mmfusion.models.checkpoint import load_classifier

BATCH = 32


def central_mask(size: int, central: float) -> np.ndarray:
    """Boolean size x size mask of the centred square spanning `central` of each side."""
    inner = round(size * central)
    start = (size - inner) // 2
    mask = np.zeros((size, size), dtype=bool)
    mask[start : start + inner, start : start + inner] = True
    return mask


def region_scores(cams: np.ndarray, labels: np.ndarray, classes: list[str], mask: np.ndarray):
    """Per class: n, mean mass inside `mask`, mean lift, share of maps peaking inside."""
    rows = {}
    for k, name in enumerate(classes):
        scores = [overlap(cam, mask) for cam in cams[labels == k]]
        if not scores:
            continue
        rows[name] = {
            "n": len(scores),
            "mass_central": float(np.mean([s.mass for s in scores])),
            "lift_central": float(np.mean([s.lift for s in scores])),
            "peak_central": float(np.mean([s.hit for s in scores])),
        }
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("manifest", type=Path)
    parser.add_argument("--test-fold", type=int, required=True)
    parser.add_argument("--modality", default="cxr")
    parser.add_argument("--central", type=float, default=0.75)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)

    model = load_classifier(args.checkpoint)
    classes = list(model.hparams["class_names"])
    # decoded as in training: the spec saved in the checkpoint
    decoding = DecodingSpec.from_dict(model.hparams["decoding"])
    size = int(decoding[args.modality].size)
    layout = ManifestLayout(args.manifest, test_fold=args.test_fold)
    samples = layout.samples("test", [args.modality])
    images = np.stack([decoding.decode(args.modality, s.files[args.modality]) for s in samples])
    labels = np.array([s.label for s in samples])
    cams, preds = [], []
    for start in range(0, len(samples), BATCH):
        x = torch.from_numpy(images[start : start + BATCH]).float().div(255.0)[:, None]
        with torch.no_grad():
            pred = model({args.modality: x}).argmax(1)
        maps, _ = branch_cams(model, {args.modality: x}, pred.tolist())
        cams.append(maps[args.modality])
        preds.append(pred.numpy())
    cams_all, preds_all = np.concatenate(cams), np.concatenate(preds)
    mask = central_mask(size, args.central)
    result = {
        "checkpoint": str(args.checkpoint),
        "test_fold": args.test_fold,
        "central_fraction": args.central,
        "central_area": float(mask.mean()),
        "accuracy": float((preds_all == labels).mean()),
        "per_class": region_scores(cams_all, labels, classes, mask),
    }
    print(
        f"Grad-CAM of the predicted class, test fold {args.test_fold}, central "
        f"{args.central:g} x {args.central:g} ({mask.mean():.0%} of the image):"
    )
    for name, row in result["per_class"].items():
        print(
            f"  {name}: n={row['n']}, mass in centre {row['mass_central']:.2f} "
            f"(lift {row['lift_central']:.2f}), peak in centre {row['peak_central']:.0%}"
        )
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
