"""`data.patient_key`: one person's files stay in one split, in splitting, folds, the leakage
guard and the checker."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import decoding
from mmfusion.data.checker.audit import CheckOptions, audit
from mmfusion.data.datamodule import MultimodalDataModule
from mmfusion.data.layouts.folds import KFoldLayout, patient_of
from mmfusion.data.layouts.manifest import ManifestLayout
from mmfusion.data.layouts.public import CovidXrayCtLayout
from mmfusion.errors import DataError

SPLITS = ("train", "val", "test")


def slices_manifest(root: Path, patients: int = 12, slices: int = 4, split=None) -> Path:
    """Rows are CT slices; `source_patient` names the person (the real CT builders' columns)."""
    rng = np.random.default_rng(0)
    rows = []
    for p in range(patients):
        label = ("covid", "healthy")[p % 2]
        for s in range(slices):
            path = root / "ct" / f"p{p:02d}_slice{s}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 255, (16, 16), dtype=np.uint8)).save(path)
            row = {"patient_id": f"file-{p}-{s}", "label": label, "ct": f"ct/{path.name}"}
            row["source_patient"] = f"person{p:02d}"
            if split:
                row["split"] = split(p, s)
            rows.append(row)
    manifest = root / "manifest.csv"
    with manifest.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return manifest


def patients_by_split(layout) -> dict[str, set[str]]:
    return {s: {patient_of(x) for x in layout.samples(s, ["ct"])} for s in SPLITS}


def people(layout) -> dict[str, set[str]]:
    """The `source_patient` of every sample, per split."""
    table = layout.table.set_index("patient_id")["source_patient"]
    return {s: {table[x.sample_id] for x in layout.samples(s, ["ct"])} for s in SPLITS}


def crossing(by_split: dict[str, set[str]]) -> set[str]:
    return (
        (by_split["train"] & by_split["val"])
        | (by_split["train"] & by_split["test"])
        | (by_split["val"] & by_split["test"])
    )


@pytest.mark.parametrize("key", ["source_patient", r"(p\d+)_slice"])
def test_a_manifest_of_slices_is_split_by_person(tmp_path, key):
    manifest = slices_manifest(tmp_path, patients=20)
    per_file = people(ManifestLayout(manifest, split_sizes={"train": 0.6, "val": 0.2, "test": 0.2}))
    assert crossing(per_file)  # the planted case: split per file, slices of a person cross
    layout = ManifestLayout(
        manifest, split_sizes={"train": 0.6, "val": 0.2, "test": 0.2}, patient_key=key
    )
    by_person = people(layout)
    assert not crossing(by_person) and all(by_person.values())
    assert sum(map(len, by_person.values())) == 20
    assert not crossing(patients_by_split(layout))  # the samples carry the key


def test_folds_keep_a_persons_slices_together(tmp_path):
    manifest = slices_manifest(tmp_path, patients=16)
    base = ManifestLayout(manifest, patient_key="source_patient")
    for fold in range(3):
        folds = KFoldLayout(base, folds=3, fold=fold)
        train = {x.patient for x in folds.samples("train", ["ct"])}
        assert not train & {x.patient for x in folds.samples("val", ["ct"])}


def test_the_checker_and_training_refuse_a_person_across_splits(tmp_path):
    # a split column made per file: person00's slices 0-2 in train, slice 3 in test
    manifest = slices_manifest(
        tmp_path, split=lambda p, s: "test" if p == 0 and s == 3 else SPLITS[p % 3]
    )
    report = audit(
        ManifestLayout(manifest, patient_key="source_patient"),
        ["ct"],
        None,
        CheckOptions(metadata_baseline=False),
    )
    leak = next(f for f in report["findings"] if f["kind"] == "patient_leak")
    assert leak["level"] == "error" and leak["count"] == 1
    assert leak["items"] == ["person00: train: file-0-0, file-0-1, file-0-2; test: file-0-3"]
    layout = ManifestLayout(manifest, patient_key="source_patient")
    module = MultimodalDataModule(layout, ["ct"], decoding(8), cache_dir=tmp_path / "cache")
    with pytest.raises(DataError, match=r"1 patient\(s\) \(data.patient_key\).*person00"):
        module.setup()


def test_a_key_that_does_not_match_a_path_names_the_file(tmp_path):
    manifest = slices_manifest(tmp_path)
    message = re.escape(r"data.patient_key='patient-(\\d)' does not match ct/p00_slice0.png")
    with pytest.raises(DataError, match=message):
        ManifestLayout(manifest, patient_key=r"patient-(\d)").classes(["ct"])


def test_unpaired_images_of_one_person_share_a_split(tmp_path):
    """Mendeley-style folders: CT slices named <person>_<n>.png, split before pseudo-pairing."""
    rng = np.random.default_rng(1)
    for modality in ("CT", "X-ray"):
        for label in ("COVID", "Non-COVID"):
            folder = tmp_path / modality / label
            folder.mkdir(parents=True)
            for person in range(10):
                for n in range(3):
                    pixels = rng.integers(0, 255, (8, 8), dtype=np.uint8)
                    Image.fromarray(pixels).save(folder / f"{label}{person}_{n}.png")
    layout = CovidXrayCtLayout(tmp_path, patient_key=r"^.*/(\w+-?\w*?\d+)_\d+\.png$")
    seen = {}
    for split in SPLITS:
        for sample in layout.samples(split, ["ct"]):
            person = sample.files["ct"].stem.split("_")[0]
            assert seen.setdefault(person, split) == split
    assert len(seen) == 20
