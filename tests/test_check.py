"""`python -m mmfusion.check`: leakage, confounds, unreadable files, audio oddities; and training
refusing leakage before it starts."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from PIL import Image
from rich.console import Console

from conftest import REAL_SAMPLE, decoding, make_tree, run_cli
from mmfusion.data.checker.audit import CheckOptions, audit
from mmfusion.data.checker.console import print_report
from mmfusion.data.datamodule import MultimodalDataModule
from mmfusion.data.layouts.folders import SplitFolderLayout
from mmfusion.data.layouts.public import CxrCtCoughLayout
from mmfusion.errors import DataError

ALL = ["ct", "cxr", "cough"]


def confounded_tree(root: Path) -> Path:
    """Healthy coughs recorded at 16 kHz, covid coughs at 8 kHz: the sample rate gives it away."""
    make_tree(root, {"train": 4, "valid": 1, "test": 1})
    rng = np.random.default_rng(1)
    for wav in root.glob("*/Cough sound/Healthy/*.wav"):
        sf.write(wav, rng.standard_normal(8000).astype(np.float32) * 0.1, 16000)
    return root


def plant_duplicate(root: Path) -> tuple[Path, Path]:
    """The same X-ray file in train and (under another name) in test."""
    source = root / "train" / "CXR" / "covid" / "covidtrain0.png"
    copy = root / "test" / "CXR" / "covid" / "covidtest0.png"
    shutil.copy(source, copy)
    return source, copy


def kinds(report: dict, level: str) -> set[str]:
    return {f["kind"] for f in report["findings"] if f["level"] == level}


def finding(report: dict, kind: str) -> dict:
    return next(f for f in report["findings"] if f["kind"] == kind)


@pytest.mark.slow
def test_cli_json_reports_a_cross_split_duplicate_and_a_sample_rate_confound(tmp_path):
    root = confounded_tree(tmp_path / "tree")
    source, copy = plant_duplicate(root)
    result = run_cli(
        ["mmfusion.check", "data=folder", f"data.root={root}", "check.json=true"], cwd=tmp_path
    )
    assert result.returncode == 1, result.stderr[-2000:]
    report = json.loads(result.stdout)  # stdout holds the JSON only; logs go to stderr
    assert kinds(report, "error") == {"duplicate_exact"}
    assert report["exact_duplicates_across_splits"] == [
        [f"{source} (train/covid)", f"{copy} (test/covid)"]
    ]
    confound = next(c for c in report["confounds"] if c["attribute"] == "sample_rate")
    assert confound["modality"] == "cough" and confound["strength"] == "strong"
    assert confound["effect"] == 1.0 and confound["shares"] == {"Healthy": 1.0, "covid": 0.0}
    # 16 kHz recordings of the same length are also twice the bytes: a confound as well
    assert {c["attribute"] for c in report["confounds"]} == {"sample_rate", "bytes"}
    assert report["counts"]["train"]["covid"] == {"ct": 4, "cxr": 4, "cough": 4, "paired": 4}
    assert report["audio"]["cough"]["Healthy"]["sample_rates"] == {"16000": 6}


def test_human_output_warns_loudly_and_a_clean_tree_passes(tmp_path, capsys):
    from rich.console import Console

    from mmfusion.cli.check import print_report

    root = confounded_tree(tmp_path / "tree")
    report = audit(SplitFolderLayout(root), ALL, None, CheckOptions())
    assert report["errors"] == 0 and kinds(report, "warning") == {"confound"}
    print_report(report, Console(width=200))
    out = capsys.readouterr().out
    assert (
        "LABEL CONFOUND cough sample_rate tracks the label: 16000 in 100% of Healthy vs 0% of "
        in out
    )
    assert "OK: 0 errors, 2 warnings, 36 files" in out


def test_near_duplicate_is_a_re_encoded_copy_across_splits(tmp_path):
    root = make_tree(tmp_path / "tree", {"train": 2, "valid": 1, "test": 1})
    source = root / "train" / "CXR" / "Healthy" / "Healthytrain1.png"
    image = Image.fromarray(np.random.default_rng(5).integers(0, 255, (80, 80), np.uint8))
    image.save(source)
    image.resize((40, 40)).save(
        root / "valid" / "CXR" / "Healthy" / "Healthyvalid0.jpg", quality=80
    )
    (root / "valid" / "CXR" / "Healthy" / "Healthyvalid0.png").unlink()
    report = audit(SplitFolderLayout(root), ALL, None, CheckOptions())
    assert kinds(report, "error") == {"duplicate_near"}
    (pair,) = report["near_duplicates_across_splits"]
    assert (
        "Healthytrain1.png (train/Healthy) ~ " in pair and "Healthyvalid0.jpg (val/Healthy)" in pair
    )


def test_unreadable_files_unpaired_stems_and_odd_recordings_are_listed(tmp_path):
    root = make_tree(tmp_path / "tree", {"train": 2, "valid": 1, "test": 1})
    bad = root / "train" / "CT" / "covid" / "covidtrain0.png"
    bad.write_text("not an image")
    (root / "train" / "Cough sound" / "Healthy" / "Healthytrain1.wav").unlink()
    short = root / "train" / "Cough sound" / "Healthy" / "Healthytrain0.wav"
    sf.write(short, np.random.default_rng(0).standard_normal(800).astype(np.float32), 8000)
    silent = root / "test" / "Cough sound" / "covid" / "covidtest0.wav"
    sf.write(silent, np.zeros(8000, np.float32), 8000)
    report = audit(SplitFolderLayout(root), ALL, None, CheckOptions())
    assert report["errors"] == 1
    assert finding(report, "unreadable")["items"] == [
        f"cannot read image {bad}: cannot identify image file {str(bad)!r} (train/covid)"
    ]
    assert report["unpaired"]["train"] == ["Healthy/Healthytrain1 (no cough)"]
    assert finding(report, "audio_short")["items"] == [f"{short} (train/Healthy): 0.10 s"]
    assert finding(report, "audio_silent")["count"] == 1
    assert str(silent) in finding(report, "audio_silent")["items"][0]


def test_training_refuses_leakage_unless_allowed(tmp_path, caplog):
    root = make_tree(tmp_path / "tree", {"train": 2, "valid": 1, "test": 1})
    source, copy = plant_duplicate(root)

    def setup(**kwargs) -> MultimodalDataModule:
        dm = MultimodalDataModule(
            SplitFolderLayout(root), ALL, decoding(16), cache_dir=tmp_path / "cache", **kwargs
        )
        dm.setup()
        return dm

    with pytest.raises(DataError, match="leakage: 1 file") as raised:
        setup()
    assert f"{source} (train) == {copy} (test)" in str(raised.value)
    assert "data.allow_leakage=true" in str(raised.value)
    with caplog.at_level(logging.WARNING):
        assert len(setup(allow_leakage=True).datasets["test"]) == 2
    assert "allowed by data.allow_leakage=true" in caplog.text


def test_training_names_silent_recordings(tmp_path, caplog):
    root = make_tree(tmp_path / "tree", {"train": 2, "valid": 1, "test": 1})
    silent = root / "train" / "Cough sound" / "covid" / "covidtrain1.wav"
    sf.write(silent, np.zeros(4000, np.float32), 8000)
    with caplog.at_level(logging.WARNING):
        layout = SplitFolderLayout(root)
        MultimodalDataModule(layout, ALL, decoding(16), cache_dir=tmp_path / "c").setup()
    assert "train split: 1 inputs are blank after decoding" in caplog.text
    assert str(silent) in caplog.text


@pytest.mark.skipif(not REAL_SAMPLE.is_dir(), reason="../shared/real-sample is not here")
def test_real_sample_confounds_are_found():
    """The public COVID sets' known confound: covid X-rays are JPEGs, the NIH ones PNGs."""
    layout = CxrCtCoughLayout(
        REAL_SAMPLE, modality_dirs={"ct": "ct", "cxr": "cxr", "cough": "cough"}
    )
    report = audit(layout, ["cxr"], None, CheckOptions())
    flagged = {(c["attribute"], c["classes"][0]) for c in report["confounds"]}
    assert ("format", "covid") in flagged
    assert report["errors"] == 0 and report["files"] == 18


def test_a_transfer_source_holding_copies_of_the_data_is_an_error_naming_each(tmp_path):
    """check.against: a byte-identical copy and a re-encoded, resized one are both found; a
    source with neither passes."""
    root = make_tree(tmp_path / "tree", {"train": 2, "valid": 1, "test": 1})
    test_xray = root / "test" / "CXR" / "covid" / "covidtest0.png"
    rng = np.random.default_rng(7)
    scales = [rng.integers(0, 255, (k, k), np.uint8) for k in (4, 8, 16, 32, 96)]
    texture = sum(np.asarray(Image.fromarray(s).resize((96, 96)), float) for s in scales) / 5
    image = Image.fromarray(texture.astype(np.uint8))  # structure at every scale, as an X-ray
    image.save(test_xray)
    source = tmp_path / "source"
    (source / "normal").mkdir(parents=True)
    shutil.copy(root / "train" / "CXR" / "Healthy" / "Healthytrain1.png", source / "normal")
    image.resize((48, 48)).save(source / "normal" / "recoded.jpg", quality=80)
    report = audit(SplitFolderLayout(root), ["cxr"], None, CheckOptions(against=(str(source),)))
    overlaps = [f for f in report["findings"] if f["kind"] == "overlap"]
    assert [(f["level"], f["count"]) for f in overlaps] == [("error", 1), ("error", 1)]
    (identical,), (recoded,) = (f["items"] for f in overlaps)
    assert identical.startswith(str(root / "train" / "CXR" / "Healthy" / "Healthytrain1.png"))
    assert f"{test_xray} (test/covid) ~ {source / 'normal' / 'recoded.jpg'}" in recoded
    assert report["overlap"] == {str(source): 2}

    for copy in (source / "normal").iterdir():
        copy.unlink()
    Image.fromarray(np.full((64, 64), 30, np.uint8)).save(source / "normal" / "other.png")
    clean = audit(SplitFolderLayout(root), ["cxr"], None, CheckOptions(against=(str(source),)))
    assert "overlap" not in kinds(clean, "error") and clean["overlap"] == {str(source): 0}
    console = Console(record=True, width=300)
    print_report(clean, console)
    assert f"against {source}: 0 file(s) of this set also there" in console.export_text()


def test_against_a_missing_set_is_one_line_naming_it(tmp_path):
    root = make_tree(tmp_path / "tree", {"train": 1, "valid": 1, "test": 1})
    result = run_cli(
        ["mmfusion.check", "data=folder", f"data.root={root}", "modality=cxr",
         f"check.against=[{tmp_path / 'nowhere'}]"],
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 1
    assert (
        result.stderr.strip()
        .splitlines()[-1]
        .endswith(f"check.against={tmp_path / 'nowhere'}: no such file or folder")
    ), result.stderr[-1500:]
