"""The real-data result tools: metadata-only baseline over folds, the fold table, Grad-CAM regions
(benchmarks/real/metadata_folds.py, fold_table.py, gradcam_regions.py)."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks" / "real"))

from fold_table import csv_rows, markdown, recalls, summarise  # noqa: E402
from gradcam_regions import central_mask, region_scores  # noqa: E402

REAL = Path("/work/data/real")


def shortcut_build(root: Path, per_fold: int = 4, folds: int = 5) -> Path:
    """Covid as RGB JPEG of varied size, healthy as grey 64x64 PNG: the cxr3 confound in small."""
    rng = np.random.default_rng(0)
    rows = []
    for fold in range(folds):
        for i in range(per_fold):
            for label in ("covid", "healthy"):
                name = f"{label}_{fold}_{i}"
                folder = root / "cxr" / label
                folder.mkdir(parents=True, exist_ok=True)
                pixels = rng.integers(0, 255, (64, 64), dtype=np.uint8)
                if label == "covid":
                    rel = f"cxr/{label}/{name}.jpg"
                    size = (40 + 7 * i + fold, 50 + 3 * i)
                    Image.fromarray(pixels).convert("RGB").resize(size).save(root / rel)
                else:
                    rel = f"cxr/{label}/{name}.png"
                    Image.fromarray(pixels).save(root / rel)
                rows.append([name, label, rel, fold])
    with (root / "manifest.csv").open("w", newline="") as handle:
        csv.writer(handle).writerows([["patient_id", "label", "cxr", "fold"], *rows])
    return root / "manifest.csv"


def metadata_over_folds(manifest: Path) -> dict:
    """metadata_folds' entry point; it needs the checker's metadata-only classifier (issue 16)."""
    pytest.importorskip("mmfusion.data.checker.metadata_baseline", reason="issue 16 not merged")
    from metadata_folds import metadata_over_folds as over_folds

    return over_folds(manifest)


def test_metadata_baseline_over_folds_finds_a_format_shortcut(tmp_path):
    result = metadata_over_folds(shortcut_build(tmp_path))
    assert len(result["folds"]) == 5 and result["modalities"] == ["cxr"]
    assert result["mean"] == 1.0 and result["chance"] == 0.5
    assert all(f["n"] == 8 for f in result["folds"])  # each fold tested on its own patients


@pytest.mark.skipif(not (REAL / "cxr2").is_dir(), reason="built real benchmarks absent")
def test_real_cxr2_is_separable_by_file_metadata_alone():
    """What docs/results-real.md reports: covid X-rays differ from NIH ones in format and size."""
    result = metadata_over_folds(REAL / "cxr2" / "manifest.csv")
    assert result["mean"] > 0.95 and result["chance"] < 0.85


def fold(test_fold: int, labels: list[int], preds: list[int]) -> dict:
    probs = np.eye(2)[preds] * 0.8 + 0.1
    return {
        "test_fold": test_fold,
        "labels": labels,
        "probs": probs.tolist(),
        "classes": ["covid", "healthy"],
        "acc": float(np.mean(np.array(labels) == np.array(preds))),
        "f1": 0.0,
        "auroc": 0.0,
        "ece": 0.0,
        "recall": recalls(np.array(labels), np.array(preds), ["covid", "healthy"]),
        "val_acc": 0.9,
        "minutes": 2.0,
    }


def test_fold_table_reports_mean_over_folds_and_pooled_out_of_fold_metrics():
    rows = [fold(0, [0, 0, 1, 1], [0, 0, 1, 1]), fold(1, [0, 1, 1, 1], [1, 1, 1, 1])]
    summary = summarise(rows)
    assert summary["acc"]["per_fold"] == [1.0, 0.75]
    assert summary["acc"]["mean"] == pytest.approx(0.875)
    low, high = summary["acc"]["t95"]
    assert low < 0.875 < high
    # pooled: 7 of 8 patients right; covid recall 2/3, healthy 5/5
    assert summary["pooled"]["acc"]["value"] == pytest.approx(7 / 8)
    assert summary["pooled_recall"] == {"covid": pytest.approx(2 / 3), "healthy": 1.0}
    text = markdown(summary)
    assert "**0.875**" in text and "per fold 1.000, 0.750" in text and "8 patients" in text


def test_gradcam_regions_score_central_against_border_maps():
    mask = central_mask(8, 0.5)
    assert mask.sum() == 16 and mask[2:6, 2:6].all()
    centre = np.zeros((8, 8))
    centre[3:5, 3:5] = 1.0
    border = np.zeros((8, 8))
    border[0, :] = 1.0
    scores = region_scores(np.stack([centre, border]), np.array([0, 1]), ["a", "b"], mask)
    assert scores["a"] == {"n": 1, "mass_central": 1.0, "lift_central": 4.0, "peak_central": 1.0}
    assert scores["b"]["mass_central"] == 0.0 and scores["b"]["peak_central"] == 0.0


def test_fold_table_reads_the_folds_prediction_files(tmp_path):
    paths = []
    for k, (labels, preds) in enumerate([([0, 1], [0, 1]), ([0, 1, 1], [0, 0, 1])]):
        probs = np.eye(2)[preds] * 0.8 + 0.1
        path = tmp_path / f"fold{k}.csv"
        lines = ["sample_id,label,pred,prob_covid,prob_healthy"]
        lines += [
            f"p{k}{i},{y},{p},{q[0]},{q[1]}"
            for i, (y, p, q) in enumerate(zip(labels, preds, probs, strict=True))
        ]
        path.write_text("\n".join(lines) + "\n")
        paths.append(path)
    summary = summarise(csv_rows(paths))
    assert summary["acc"]["per_fold"] == [1.0, pytest.approx(2 / 3)]
    assert summary["n"] == 5 and summary["classes"] == ["covid", "healthy"]
    assert "wall-clock" not in markdown(summary)  # unknown from prediction files alone
