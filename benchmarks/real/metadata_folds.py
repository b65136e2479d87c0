"""The metadata-only baseline of a fold-split benchmark, on the same folds as the recipes.

    python benchmarks/real/metadata_folds.py BUILD/manifest.csv [--modalities cxr] [--json OUT]

For each test fold k (validation fold k+1, training on the rest, as
`data.layout.test_fold=k` does), `mmfusion.data.checker.metadata_baseline` fits its classifier
on the training files' metadata alone (format, mode, bit depth, width, height, bytes; audio
format, codec, rate, channels, duration) and scores it on the test fold. Prints each fold and
the mean with its 95% interval over folds, beside the majority-class chance: the accuracy a
model can reach from how the files were recorded and stored, without looking at the patient.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from mmfusion.data.checker.metadata_baseline import metadata_baseline
from mmfusion.data.layouts.manifest import MODALITY_COLUMNS, ManifestLayout
from mmfusion.errors import MmfusionError
from mmfusion.evaluation.statistics import nadeau_bengio_interval


def fold_count(manifest: Path) -> int:
    folds = pd.read_csv(manifest, dtype=str, usecols=["fold"])["fold"]
    return folds.nunique()


def fold_interval(values: list[float]) -> tuple[float, float]:
    """95% interval of the mean over folds with the Nadeau-Bengio corrected variance: the folds
    share their training data (a fold tests on 1 / k, trains on (k - 2) / k; statistics.md)."""
    array = np.asarray(values, dtype=float)
    if len(array) < 3 or array.std() == 0:
        return float(array.mean()), float(array.mean())
    _, low, high = nadeau_bengio_interval(array, len(array) - 2, 1)
    return max(low, 0.0), min(high, 1.0)


def metadata_over_folds(manifest: Path, modalities: list[str] | None = None) -> dict:
    """{'folds': [per-fold test scores], 'mean', 'sd', 'ci', 'chance', 'features'}."""
    columns = set(pd.read_csv(manifest, nrows=0).columns)
    modalities = modalities or [m for m in MODALITY_COLUMNS if m in columns]
    folds = []
    for test_fold in range(fold_count(manifest)):
        layout = ManifestLayout(manifest, test_fold=test_fold)
        classes = layout.classes(modalities)
        samples = {s: layout.samples(s, modalities) for s in ("train", "val", "test")}
        baseline = metadata_baseline(samples, modalities, classes)
        test = baseline.scores["test"]
        folds.append(
            {
                "test_fold": test_fold,
                "n": test.n,
                "accuracy": test.accuracy,
                "chance": test.chance,
                "p_value": test.p_value,
                "features": list(baseline.features),
                "importance": baseline.importance,
            }
        )
    accuracy = [f["accuracy"] for f in folds]
    return {
        "manifest": str(manifest),
        "modalities": modalities,
        "folds": folds,
        "mean": float(np.mean(accuracy)),
        "sd": float(np.std(accuracy, ddof=1)) if len(accuracy) > 1 else 0.0,
        "ci": fold_interval(accuracy),
        "chance": float(np.mean([f["chance"] for f in folds])),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("manifest", type=Path, help="a built benchmark's manifest.csv")
    parser.add_argument("--modalities", nargs="+", choices=MODALITY_COLUMNS, default=None)
    parser.add_argument("--json", type=Path, default=None, help="write the result here too")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    try:
        result = metadata_over_folds(args.manifest, args.modalities)
    except MmfusionError as err:
        raise SystemExit(f"error: {err}") from None
    for fold in result["folds"]:
        top = ", ".join(f"{k} {v:+.2f}" for k, v in list(fold["importance"].items())[:2])
        print(
            f"fold {fold['test_fold']}: accuracy {fold['accuracy']:.3f} on {fold['n']} "
            f"(chance {fold['chance']:.3f}, p={fold['p_value']:.2g}; val drop when permuted: {top})"
        )
    low, high = result["ci"]
    print(
        f"metadata-only, {len(result['folds'])} folds: {result['mean']:.3f} ± {result['sd']:.3f} "
        f"[95% Nadeau-Bengio over folds {low:.3f}, {high:.3f}], chance {result['chance']:.3f}"
    )
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
