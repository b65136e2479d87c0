"""The public dataset layouts and the manifest: counts, pairing, split before pairing, missing
cells, and paths that leave the data root."""

from __future__ import annotations

import logging
import zlib
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from conftest import REAL_SAMPLE, decoding, make_tree
from mmfusion.data.datamodule import MultimodalDataModule
from mmfusion.data.layouts.folders import SplitFolderLayout
from mmfusion.data.layouts.manifest import ManifestLayout
from mmfusion.data.layouts.public import CovidXrayCtLayout, CxrCtCoughLayout
from mmfusion.data.layouts.splitting import split_sizes
from mmfusion.errors import ConfigError, DataError

ALL = ["ct", "cxr", "cough"]
SPLITS = ("train", "val", "test")


def _image(path: Path, value: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(value)
    Image.fromarray(rng.integers(0, 255, (20, 20), dtype=np.uint8)).save(path)
    return path


def _wav(path: Path, value: int, rate: int = 8000) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(value)
    sf.write(path, rng.standard_normal(rate // 2).astype(np.float32) * 0.1, rate)
    return path


def make_unsplit(root: Path, per_class: int = 10, classes=("Healthy", "covid")) -> Path:
    """`processed_dataset/{CT,CXR,Cough sound}/<class>/<stem>.<ext>`, the unsplit download."""
    base = root / "processed_dataset"
    for c, name in enumerate(classes):
        for i in range(per_class):
            stem = f"{name}_{i:03d}"
            value = 1000 * c + i
            _image(base / "CT" / name / f"{stem}.png", value)
            _image(base / "CXR" / name / f"{stem}.jpg", value + 500)
            _wav(base / "Cough sound" / name / f"{stem}.wav", value)
    return root


def _ids(samples) -> set[str]:
    return {s.sample_id for s in samples}


# -- splitting --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "sizes", "expected"),
    [
        (500, {"train": 400, "val": 50, "test": 50}, {"train": 400, "val": 50, "test": 50}),
        (600, {"train": 400, "val": 50, "test": 50}, {"train": 400, "val": 50, "test": 50}),
        (10, {"train": 400, "val": 50, "test": 50}, {"train": 8, "val": 1, "test": 1}),
        (20, {"train": 0.8, "val": 0.1, "test": 0.1}, {"train": 16, "val": 2, "test": 2}),
    ],
)
def test_split_sizes_take_counts_or_fractions(n, sizes, expected):
    assert split_sizes(n, sizes) == expected


def test_split_fractions_must_sum_to_one():
    with pytest.raises(ConfigError, match="sum to 1"):
        split_sizes(10, {"train": 0.5, "val": 0.1, "test": 0.1})


# -- Kaggle CXR-CT-Cough ----------------------------------------------------------------------


def test_presplit_download_is_found_below_the_given_root(tmp_path):
    make_tree(tmp_path / "download" / "processed_dataset_split")
    layout = CxrCtCoughLayout(tmp_path / "download")
    reference = SplitFolderLayout(tmp_path / "download" / "processed_dataset_split")
    for split in SPLITS:
        assert _ids(layout.samples(split, ALL)) == _ids(reference.samples(split, ALL))
    assert layout.presplit is True


def test_unsplit_download_is_split_by_stem_before_pairing(tmp_path):
    make_unsplit(tmp_path, per_class=10)
    sizes = {"train": 6, "val": 2, "test": 2}
    layout = CxrCtCoughLayout(tmp_path, split_sizes=sizes, seed=3)
    by_split = {split: layout.samples(split, ALL) for split in SPLITS}
    assert {s: len(v) for s, v in by_split.items()} == {"train": 12, "val": 4, "test": 4}
    for split, samples in by_split.items():
        counts = np.bincount([s.label for s in samples], minlength=2)
        assert counts.tolist() == [sizes[split]] * 2  # stratified: same count per class
        for sample in samples:  # all modalities of a patient share its stem and class
            assert len({p.stem for p in sample.files.values()}) == 1
            assert {p.parent.name for p in sample.files.values()} == {
                sample.sample_id.split("/")[0]
            }
    ids = [_ids(v) for v in by_split.values()]
    assert not (ids[0] & ids[1] or ids[0] & ids[2] or ids[1] & ids[2])
    assert len(set.union(*ids)) == 20
    # deterministic, seed-dependent
    again = CxrCtCoughLayout(tmp_path, split_sizes=sizes, seed=3)
    assert _ids(again.samples("test", ALL)) == ids[2]
    other = CxrCtCoughLayout(tmp_path, split_sizes=sizes, seed=4)
    assert _ids(other.samples("test", ALL)) != ids[2]


def test_unsplit_split_of_a_patient_does_not_depend_on_the_modalities_used(tmp_path):
    make_unsplit(tmp_path, per_class=10)
    missing = tmp_path / "processed_dataset" / "Cough sound" / "covid" / "covid_004.wav"
    missing.unlink()
    sizes = {"train": 6, "val": 2, "test": 2}
    with_all = CxrCtCoughLayout(tmp_path, split_sizes=sizes)
    ct_only = CxrCtCoughLayout(tmp_path, split_sizes=sizes)
    for split in SPLITS:
        all_ids, ct_ids = _ids(with_all.samples(split, ALL)), _ids(ct_only.samples(split, ["ct"]))
        assert all_ids <= ct_ids  # never moved to another split
        assert ct_ids - all_ids == ({"covid/covid_004"} if "covid/covid_004" in ct_ids else set())
    assert sum(len(with_all.unpaired[s]) for s in SPLITS) == 1


def test_a_root_in_neither_kaggle_layout_is_named(tmp_path):
    (tmp_path / "images").mkdir()
    with pytest.raises(DataError, match=r"holds neither \['train', 'valid', 'test'\] nor"):
        CxrCtCoughLayout(tmp_path).classes(ALL)


def test_unsplit_default_is_the_seed_study_400_50_50_scaled_to_small_classes(tmp_path, caplog):
    make_unsplit(tmp_path, per_class=10)
    layout = CxrCtCoughLayout(tmp_path)
    with caplog.at_level(logging.WARNING):
        counts = {split: len(layout.samples(split, ["ct"])) for split in SPLITS}
    assert counts == {"train": 16, "val": 2, "test": 2}
    assert "fewer than the 500 asked for" in caplog.text


# -- Mendeley COVID X-ray + CT (unpaired) -----------------------------------------------------


def make_mendeley(root: Path, ct_per_class: int = 10, xray_per_class: int = 12) -> Path:
    for c, name in enumerate(("COVID", "Non-COVID")):
        for i in range(ct_per_class):
            _image(root / "CT" / name / f"ct_{name}_{i}.png", 100 * c + i)
        for i in range(xray_per_class):
            _image(root / "X-ray" / name / f"xr {name} ({i}).jpg", 100 * c + i + 50)
    return root


def test_mendeley_pairs_pseudo_patients_within_split_and_class(tmp_path, caplog):
    root = make_mendeley(tmp_path / "Original Data")
    layout = CovidXrayCtLayout(root, seed=1)
    assert layout.classes(["ct", "cxr"]) == ["COVID", "Non-COVID"]
    with caplog.at_level(logging.WARNING):
        by_split = {split: layout.samples(split, ["ct", "cxr"]) for split in SPLITS}
    assert "pseudo-patient" in caplog.text
    for split, samples in by_split.items():
        ct_alone = {s.files["ct"] for s in CovidXrayCtLayout(root, seed=1).samples(split, ["ct"])}
        for sample in samples:
            name = layout.classes(["ct"])[sample.label]
            assert sample.files["ct"].parent.name == sample.files["cxr"].parent.name == name
            assert sample.files["ct"] in ct_alone  # each modality was split before pairing
    ct_files = [s.files["ct"] for v in by_split.values() for s in v]
    assert len(ct_files) == len(set(ct_files)) == 20  # every CT used once (fewer CT than X-ray)
    dropped = sum(len(layout.unpaired[s]) for s in SPLITS)
    assert dropped == 4  # the surplus X-rays, counted
    again = CovidXrayCtLayout(root, seed=1)
    assert [s.files for s in again.samples("val", ["ct", "cxr"])] == [
        s.files for s in by_split["val"]
    ]


def test_mendeley_has_no_cough(tmp_path):
    layout = CovidXrayCtLayout(make_mendeley(tmp_path / "m"))
    with pytest.raises(ConfigError, match="modality=ct_cxr"):
        layout.samples("train", ALL)


# -- manifest ----------------------------------------------------------------------------------

MANIFEST = """patient_id,label,split,ct,cxr,cough
p1,covid,train,ct/p1.png,cxr/p1.png,cough/p1.wav
p2,healthy,train,ct/p2.png,cxr/p2.png,
p3,covid,val,ct/p3.png,,cough/p3.wav
p4,healthy,val,ct/p4.png,cxr/p4.png,cough/p4.wav
p5,covid,test,ct/p5.png,cxr/p5.png,cough/p5.wav
p6,healthy,test,ct/p6.png,cxr/p6.png,cough/p6.wav
p7,covid,train,ct/p7.png,cxr/p7.png,cough/p7.wav
"""


def write_manifest(root: Path, text: str = MANIFEST) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for line in text.strip().splitlines()[1:]:
        for cell in line.split(",")[2:]:
            if "/" in cell and not cell.startswith(".."):
                writer = _wav if cell.endswith(".wav") else _image
                writer(root / cell, zlib.crc32(cell.encode()))  # distinct content per file
    (root / "manifest.csv").write_text(text)
    return root / "manifest.csv"


def test_manifest_missing_cells_drop_the_patient_only_where_the_modality_is_used(tmp_path, caplog):
    layout = ManifestLayout(write_manifest(tmp_path / "data"))
    assert layout.classes(ALL) == ["covid", "healthy"]
    with caplog.at_level(logging.WARNING):
        train = layout.samples("train", ALL)
    assert _ids(train) == {"p1", "p7"}
    assert layout.unpaired["train"] == ["healthy/p2 (no cough)"]
    assert "dropped 1 patients" in caplog.text
    assert _ids(layout.samples("train", ["ct", "cxr"])) == {"p1", "p2", "p7"}
    assert _ids(layout.samples("val", ["ct", "cough"])) == {"p3", "p4"}
    p1 = next(s for s in train if s.sample_id == "p1")
    assert p1.label == 0 and p1.files["ct"] == (tmp_path / "data" / "ct" / "p1.png").absolute()


def test_manifest_datamodule_trains_on_what_is_present(tmp_path):
    csv = write_manifest(tmp_path / "data")
    # the one covid val patient lacks cxr: val is left without covid, which stops a run ...
    with pytest.raises(DataError, match="val has 0 'covid'"):
        MultimodalDataModule(
            ManifestLayout(csv), ["ct", "cxr"], decoding(16), cache_dir=tmp_path / "cache"
        ).setup()
    # ... unless explicitly allowed
    dm = MultimodalDataModule(
        ManifestLayout(csv),
        ["ct", "cxr"],
        decoding(16),
        cache_dir=tmp_path / "cache",
        min_per_class={"val": 0},
    )
    dm.setup()
    assert {s: len(d) for s, d in dm.datasets.items()} == {"train": 3, "val": 1, "test": 2}


def test_manifest_without_split_column_splits_patients_by_label(tmp_path):
    rows = ["patient_id,label,ct"] + [
        f"p{i},{'covid' if i % 2 else 'healthy'},ct/p{i}.png" for i in range(40)
    ]
    csv = write_manifest(tmp_path / "data", "\n".join(rows) + "\n")
    layout = ManifestLayout(csv, seed=5)
    by_split = {split: layout.samples(split, ["ct"]) for split in SPLITS}
    assert {s: len(v) for s, v in by_split.items()} == {"train": 32, "val": 4, "test": 4}
    for samples in by_split.values():
        assert np.bincount([s.label for s in samples]).tolist()[0] * 2 == len(samples)
    assert len(set.union(*(_ids(v) for v in by_split.values()))) == 40
    assert _ids(ManifestLayout(csv, seed=5).samples("test", ["ct"])) == _ids(by_split["test"])


def test_manifest_folds_give_test_val_and_train_folds(tmp_path):
    rows = ["patient_id,label,fold,ct"] + [
        f"p{i},{'covid' if i % 2 else 'healthy'},{i % 5},ct/p{i}.png" for i in range(20)
    ]
    csv = write_manifest(tmp_path / "data", "\n".join(rows) + "\n")
    layout = ManifestLayout(csv, test_fold=4)
    ids = {split: _ids(layout.samples(split, ["ct"])) for split in SPLITS}
    assert ids["test"] == {f"p{i}" for i in range(4, 20, 5)}
    assert ids["val"] == {f"p{i}" for i in range(0, 20, 5)}  # the next fold, wrapping round
    assert len(ids["train"]) == 12 and not ids["train"] & (ids["test"] | ids["val"])
    assert _ids(ManifestLayout(csv, test_fold=0, val_fold=2).samples("val", ["ct"])) == {
        f"p{i}" for i in range(2, 20, 5)
    }
    with pytest.raises(ConfigError, match=r"has 5 folds: choose the test fold with data.layout"):
        ManifestLayout(csv).samples("train", ["ct"])
    with pytest.raises(ConfigError, match=r"test_fold=5: the manifest has folds 0..4"):
        ManifestLayout(csv, test_fold=5).samples("train", ["ct"])
    with pytest.raises(ConfigError, match=r"val_fold=1 is the test fold"):
        ManifestLayout(csv, test_fold=1, val_fold=1).samples("train", ["ct"])


def test_manifest_paths_outside_the_data_root_are_refused_unless_allowed(tmp_path):
    _image(tmp_path / "elsewhere.png", 0)
    csv = write_manifest(
        tmp_path / "data",
        "patient_id,label,split,ct\np1,a,train,../elsewhere.png\np2,b,train,ct/p2.png\n",
    )
    with pytest.raises(DataError, match=r"p1 ct path '\.\./elsewhere\.png' is outside the data"):
        ManifestLayout(csv).samples("train", ["ct"])
    allowed = ManifestLayout(csv, allow_outside_root=True).samples("train", ["ct"])
    assert {s.files["ct"].name for s in allowed} == {"elsewhere.png", "p2.png"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("patient_id,label,ct\np1,a,x.png\np1,b,y.png\n", "more than one row: p1"),
        (
            "patient_id,label,split,ct\np1,a,holdout,x.png\n",
            r"unknown split value\(s\) \['holdout'\]",
        ),
        ("patient_id,ct\np1,x.png\n", "needs columns patient_id, label"),
    ],
)
def test_manifest_mistakes_are_named(tmp_path, text, message):
    (tmp_path / "m.csv").write_text(text)
    with pytest.raises(DataError, match=message):
        ManifestLayout(tmp_path / "m.csv").samples("train", ["ct"])


def test_manifest_lacking_a_modality_column_says_so(tmp_path):
    csv = write_manifest(tmp_path / "d", "patient_id,label,split,ct\np1,a,train,ct/p1.png\n")
    with pytest.raises(DataError, match="no cough column"):
        ManifestLayout(csv).samples("train", ["ct", "cough"])


@pytest.mark.skipif(not REAL_SAMPLE.is_dir(), reason="../shared/real-sample is not here")
def test_real_sample_through_a_manifest(tmp_path):
    """Real files of mixed formats, listed by a manifest that points into the shared folder."""
    rows = ["patient_id,label,ct"]
    for path in sorted((REAL_SAMPLE / "ct").rglob("*.*")):
        rows.append(f"{path.stem},{path.parent.name},{path}")
    (tmp_path / "m.csv").write_text("\n".join(rows) + "\n")
    layout = ManifestLayout(tmp_path / "m.csv", root=REAL_SAMPLE)
    dm = MultimodalDataModule(layout, ["ct"], decoding(16), cache_dir=tmp_path / "cache")
    dm.setup()
    assert dm.class_names == ["covid", "non_covid"]
    assert sum(len(d) for d in dm.datasets.values()) == 12
