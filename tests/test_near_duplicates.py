"""`data.near_duplicates=report|group|drop`: near-duplicate images across splits reported, kept in
one split, or thinned out to one; the same in every fold of a manifest."""

from __future__ import annotations

import csv
import logging
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import make_tree
from mmfusion.data.checker.audit import CheckOptions, audit
from mmfusion.data.layouts.folders import SplitFolderLayout
from mmfusion.data.layouts.manifest import ManifestLayout
from mmfusion.data.splits import run_layout

ALL = ["ct", "cxr", "cough"]
OPTIONS = CheckOptions(metadata_baseline=False)


def plant_copies(root: Path) -> list[Path]:
    """One X-ray, and re-encoded, resized copies of it in valid and test (same stems' slots)."""
    image = Image.fromarray(np.random.default_rng(5).integers(0, 255, (80, 80), np.uint8))
    original = root / "train" / "CXR" / "Healthy" / "Healthytrain1.png"
    image.save(original)
    copies = [original]
    for split, size in (("valid", 40), ("test", 60)):
        stem = root / split / "CXR" / "Healthy" / f"Healthy{split}0"
        stem.with_suffix(".png").unlink()
        image.resize((size, size)).save(stem.with_suffix(".jpg"), quality=80)
        copies.append(stem.with_suffix(".jpg"))
    return copies


def splits_of(layout, paths: list[Path]) -> dict[Path, str]:
    return {
        s.files["cxr"]: split
        for split in ("train", "val", "test")
        for s in layout.samples(split, ALL)
        if s.files["cxr"] in paths
    }


def test_report_lists_them_group_puts_them_in_one_split_drop_keeps_one(tmp_path, caplog):
    root = make_tree(tmp_path / "tree", {"train": 3, "valid": 2, "test": 2})
    copies = plant_copies(root)
    reported = audit(run_layout(SplitFolderLayout(root)), ALL, None, OPTIONS)
    assert len(reported["near_duplicates_across_splits"]) == 3  # train~val, train~test, val~test
    assert {f["kind"] for f in reported["findings"] if f["level"] == "error"} == {"duplicate_near"}

    with caplog.at_level(logging.WARNING):
        grouped = run_layout(SplitFolderLayout(root), "group", cache_dir=tmp_path / "cache")
        # all in the split of the smallest sample id, Healthy/Healthytest0
        assert set(splits_of(grouped, copies).values()) == {"test"}
    assert "1 clusters of near-duplicate or same-patient samples; 2 samples moved" in caplog.text
    assert grouped.counts == {"clusters": 1, "moved": 2, "dropped": 0}
    # the same split whichever modalities a run uses (clusters are found over all of them)
    ct_only = {s.sample_id for s in grouped.samples("test", ["ct"])}
    assert {"Healthy/Healthytrain1", "Healthy/Healthyvalid0"} <= ct_only
    report = audit(grouped, ALL, None, OPTIONS)
    assert report["near_duplicates_across_splits"] == [] and report["errors"] == 0
    assert report["data"]["near_duplicates"]["moved"] == 2
    assert sum(len(grouped.samples(s, ALL)) for s in ("train", "val", "test")) == 14

    dropped = run_layout(SplitFolderLayout(root), "drop")
    assert list(splits_of(dropped, copies).values()) == ["test"]
    assert dropped.counts["dropped"] == 2
    assert sum(len(dropped.samples(s, ALL)) for s in ("train", "val", "test")) == 12


def test_group_keeps_a_cluster_in_one_fold_across_all_folds(tmp_path):
    """Copies in folds 0, 1 and 2 of a manifest: whichever fold is tested, they stay together,
    and over the folds each sample is tested exactly once."""
    rng = np.random.default_rng(0)
    rows = []
    for i in range(15):
        path = tmp_path / f"img{i:02d}.png"
        Image.fromarray(rng.integers(0, 255, (48, 48), dtype=np.uint8)).save(path)
        rows.append({"patient_id": f"p{i:02d}", "label": "ab"[i % 2], "cxr": path.name})
        rows[-1]["fold"] = str(i % 3)
    original = Image.open(tmp_path / "img00.png")
    for i in (4, 8):  # folds 1 and 2 get copies of fold 0's image
        original.resize((40, 40)).save(tmp_path / f"img{i:02d}.png")
    manifest = tmp_path / "manifest.csv"
    with manifest.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    tested = []
    for fold in range(3):
        layout = run_layout(ManifestLayout(manifest, test_fold=fold), "group")
        where = {
            s.sample_id: split
            for split in ("train", "val", "test")
            for s in layout.samples(split, ["cxr"])
        }
        assert len({where[p] for p in ("p00", "p04", "p08")}) == 1
        tested += [p for p, split in where.items() if split == "test"]
    assert sorted(tested) == [f"p{i:02d}" for i in range(15)]


@pytest.mark.parametrize("option", [{"policy": "merge"}, {"distance": -1}])
def test_bad_options_name_the_option(tmp_path, option):
    from mmfusion.errors import ConfigError

    with pytest.raises(ConfigError, match="data.near_duplicate"):
        run_layout(
            SplitFolderLayout(tmp_path), option.get("policy", "group"), option.get("distance", 10)
        )
