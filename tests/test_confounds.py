"""Label confounds in any number of classes, partial ones, and the metadata-only classifier,
as `python -m mmfusion.check` reports them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf
from PIL import Image

from mmfusion.data.checker.audit import CheckOptions, audit
from mmfusion.data.layouts.folders import SplitFolderLayout

SPLIT_OF = ("train", "train", "train", "valid", "test")  # every 5 files: 3 train, 1 val, 1 test
DIRS = {"ct": "CT", "cough": "Cough sound"}


def write_files(root: Path, modality: str, label: str, kinds: list[str]) -> None:
    """One file per entry of `kinds` (an image suffix, or an audio sample rate), spread over
    the splits; the content is noise, so only the file properties differ."""
    rng = np.random.default_rng(abs(hash((modality, label))) % 2**32)
    for i, kind in enumerate(kinds):
        folder = root / SPLIT_OF[i % 5] / DIRS[modality] / label
        folder.mkdir(parents=True, exist_ok=True)
        if modality == "cough":
            rate = int(kind)
            wave = rng.standard_normal(rate // 4).astype(np.float32) * 0.1
            sf.write(folder / f"{label}{i}.wav", wave, rate)
        else:
            pixels = rng.integers(0, 255, (32, 32), dtype=np.uint8)
            Image.fromarray(pixels).save(folder / f"{label}{i}.{kind}")


def test_one_class_of_four_at_48_khz_is_a_confound_naming_that_class(tmp_path):
    """covid at 48 kHz, asthma / healthy / pneumonia at 16 kHz: flagged whatever the order."""
    for label in ("asthma", "covid", "healthy", "pneumonia"):
        write_files(tmp_path, "cough", label, ["48000" if label == "covid" else "16000"] * 20)
    report = audit(SplitFolderLayout(tmp_path), ["cough"], None, CheckOptions())
    confound = next(c for c in report["confounds"] if c["attribute"] == "sample_rate")
    assert confound["strength"] == "strong" and confound["classes"] == ["covid"]
    assert confound["effect"] > 0.95 and confound["p_value"] < 1e-10  # V, bias-corrected
    assert confound["message"].startswith(
        "cough sample_rate tracks the label: 48000 in 100% of covid vs 0% of asthma, "
        "0% of healthy, 0% of pneumonia (Cramér's V 0.99"
    )
    messages = [f["message"] for f in report["findings"] if f["kind"] == "confound"]
    assert any("sample_rate" in m and "LABEL CONFOUND" in m for m in messages)
    # the metadata-only classifier tells covid apart: 1/4 + 1/4 x (1/3 of the rest) at least
    val = report["metadata_baseline"]["scores"]["val"]
    assert val["chance"] == 0.25 and val["accuracy"] >= 0.5 and val["above_chance"]
    assert any(f["kind"] == "confound_metadata" for f in report["findings"])


def test_partial_confounds_are_warnings_with_their_percentages(tmp_path):
    """CT as PNG for 91% of covid and 50% of Healthy; cough at 8 kHz for 72% vs 33%."""
    write_files(tmp_path, "ct", "covid", ["png"] * 91 + ["jpg"] * 9)
    write_files(tmp_path, "ct", "Healthy", ["png", "jpg"] * 50)
    write_files(tmp_path, "cough", "covid", ["8000"] * 72 + ["16000"] * 28)
    write_files(tmp_path, "cough", "Healthy", ["8000"] * 33 + ["16000"] * 67)
    for modality in ("ct", "cough"):  # each modality is its own data set (unpaired stems)
        report = audit(SplitFolderLayout(tmp_path), [modality], None, CheckOptions())
        by_attribute = {c["attribute"]: c for c in report["confounds"]}
        if modality == "ct":
            found = by_attribute["format"]
            assert found["message"].startswith(
                "ct format tracks the label: PNG in 91% of covid vs 50% of Healthy (Cramér's V 0.4"
            )
        else:
            found = by_attribute["sample_rate"]
            assert found["message"].startswith(
                "cough sample_rate tracks the label: 8000 in 72% of covid vs 33% of Healthy "
                "(Cramér's V 0.3"
            )
        assert found["strength"] == "partial" and found["classes"] == ["covid"]
        partial = [f["message"] for f in report["findings"] if f["kind"] == "confound_partial"]
        assert any(found["message"] in m for m in partial)


def test_files_alike_in_every_property_raise_no_confound(tmp_path):
    for label in ("a", "b", "c"):
        write_files(tmp_path, "ct", label, ["png"] * 15)
    report = audit(SplitFolderLayout(tmp_path), ["ct"], None, CheckOptions())
    assert report["confounds"] == []
    assert not report["metadata_baseline"]["scores"]["val"]["above_chance"]
    assert report["warnings"] == 0
