"""The real-data builders: patients from file names, mislabelled copies dropped, a patient in one
fold, the same manifest byte for byte, and nothing shared with an excluded set."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks" / "real"))

from build_cxr_transfer import patient_of
from common import Item, Source, build_benchmark, file_sha256, read_manifest


@pytest.mark.parametrize(
    ("stem", "patient"),
    [
        ("person447_virus_920", "kermany-person-447"),
        ("person447_bacteria_1930", "kermany-person-447"),
        ("person447_virus_921_1", "kermany-person-447"),  # a second view of one study
        ("IM-0115-0001", "kermany-IM-0115"),
        ("NORMAL2-IM-1427-0001-0002", "kermany-NORMAL2-IM-1427"),
    ],
)
def test_kermany_file_names_name_their_patient(stem, patient):
    assert patient_of(stem)[0] == patient


def test_an_unknown_name_is_its_own_patient_and_says_so():
    assert patient_of("scan_17") == ("file-scan_17", "own patient")


def planted_source(root: Path) -> list:
    """Two labels, 6 patients each with 2 distinct X-rays; plus a byte-identical copy under the
    other label (its label cannot be trusted) and a second copy under the same label."""
    rng = np.random.default_rng(0)
    items = []
    for label in ("covid", "normal"):
        for patient in range(6):
            for view in range(2):
                rel = f"{label}/p{patient}_{view}.png"
                (root / label).mkdir(parents=True, exist_ok=True)
                pixels = rng.integers(0, 255, (32, 32), dtype=np.uint8)
                Image.fromarray(pixels).save(root / rel)
                items.append(Item(root / rel, rel, label, f"{label}-{patient}"))
    for rel, label, patient in (
        ("normal/copy_of_covid.png", "normal", "normal-9"),  # same bytes, other label
        ("covid/copy_of_covid.png", "covid", "covid-7"),  # same bytes, same label
    ):
        (root / rel).write_bytes((root / "covid/p0_0.png").read_bytes())
        items.append(Item(root / rel, rel, label, patient))
    return items


def test_a_build_drops_mislabelled_copies_keeps_patients_in_one_fold_and_is_reproducible(
    tmp_path,
):
    source = Source("someone/xrays", "0" * 40, "https://example.org")

    def build(out: Path, **options) -> dict:
        items = planted_source(tmp_path / "src")
        return build_benchmark(
            name="t", modality="cxr", items=items, out=out, source=source,
            license_text="CC0", **options,
        )  # fmt: skip

    report = build(tmp_path / "a")
    identical = report["identical_files"]
    # the covid image and its copy under "normal" disagree: all three copies go
    assert identical["cross_label_files_dropped"] == 3 and report["files"] == 23
    rows = read_manifest(tmp_path / "a" / "manifest.csv")
    planted = file_sha256(tmp_path / "src" / "covid" / "p0_0.png")
    assert planted not in {r["sha256_cxr"] for r in rows}
    folds_of = {}
    for row in rows:
        folds_of.setdefault(row["source_patient"], set()).add(row["fold"])
    assert all(len(folds) == 1 for folds in folds_of.values())
    assert len({r["patient_id"] for r in rows}) == len(rows)  # unique per row, as the reader needs
    assert (tmp_path / "a" / "LICENSE-SOURCE.md").read_text() == "CC0\n"
    # same input, same manifest, byte for byte
    build(tmp_path / "b")
    assert (tmp_path / "a" / "manifest.csv").read_bytes() == (
        tmp_path / "b" / "manifest.csv"
    ).read_bytes()
    # a transfer set built against this one keeps none of its images: one line says so
    with pytest.raises(SystemExit, match="t: 0 files of 0 patients left after exclusion"):
        build(tmp_path / "c", exclude=[tmp_path / "a" / "manifest.csv"])
