"""Specification of the synthetic CT / CXR / cough benchmark generator."""

from __future__ import annotations

import csv
import itertools
import json
import logging
import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from PIL import Image
from scipy import stats

from mmfusion.data import synthetic
from mmfusion.data.synthetic import (
    CLASSES,
    MODALITY_DIRS,
    SPLIT_DIRS,
    SyntheticSpec,
    ceilings,
    ensure_synthetic,
    generate,
)
from mmfusion.data.synthetic.cough import render_cough
from mmfusion.data.synthetic.ct import render_ct
from mmfusion.data.synthetic.cxr import render_cxr

TINY = {"train": 3, "valid": 2, "test": 2}
MODALITIES = ("ct", "cxr", "cough")
EXT = {"ct": ".png", "cxr": ".png", "cough": ".wav"}
UNIFORM = {c: 0.25 for c in CLASSES}


def tiny_spec(**kw) -> SyntheticSpec:
    return SyntheticSpec(per_class=dict(TINY), image_size=32, **kw)


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("tiny")
    generate(root, tiny_spec(), workers=1)
    return root


def read_findings(root: Path) -> list[dict]:
    with open(root / "findings.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def all_files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


# ---------------------------------------------------------------------------------------------
# Layout
# ---------------------------------------------------------------------------------------------


def test_layout_matches_kaggle_dataset(tiny_root: Path) -> None:
    seen: dict[str, str] = {}
    for split in SPLIT_DIRS:
        for cls in CLASSES:
            stems = {}
            for m in MODALITIES:
                folder = tiny_root / split / MODALITY_DIRS[m] / cls
                files = sorted(folder.iterdir())
                assert all(f.suffix == EXT[m] for f in files)
                stems[m] = {f.stem for f in files}
            # One patient = the same stem in each modality folder of its class.
            assert stems["ct"] == stems["cxr"] == stems["cough"]
            assert len(stems["ct"]) == TINY[split]
            for stem in stems["ct"]:
                assert stem.startswith(cls)
                assert stem not in seen, f"{stem} in both {seen.get(stem)} and {split}"
                seen[stem] = split
    assert {p.name for p in tiny_root.iterdir() if p.is_file()} == {
        "ceilings.json",
        "findings.csv",
        "generator.json",
    }


def test_findings_csv_lists_every_patient(tiny_root: Path) -> None:
    rows = read_findings(tiny_root)
    assert list(rows[0]) == ["split", "stem", "label", "ct_shown", "cxr_shown", "cough_shown"]
    assert len(rows) == sum(TINY.values()) * len(CLASSES)
    for row in rows:
        for m in MODALITIES:
            path = tiny_root / row["split"] / MODALITY_DIRS[m] / row["label"] / row["stem"]
            assert path.with_suffix(EXT[m]).is_file()
            assert row[f"{m}_shown"] in ("0", "1")
        if row["label"] == "Healthy":  # there is no finding to show
            assert not any(int(row[f"{m}_shown"]) for m in MODALITIES)


def test_generator_json_records_spec_and_version(tiny_root: Path) -> None:
    meta = json.loads((tiny_root / "generator.json").read_text())
    assert meta["generator_version"] == synthetic.GENERATOR_VERSION
    assert SyntheticSpec(**meta["spec"]) == tiny_spec()
    assert meta["key"] == tiny_spec().key()


# ---------------------------------------------------------------------------------------------
# File formats
# ---------------------------------------------------------------------------------------------


def test_images_are_8bit_grayscale_png_of_configured_size(tiny_root: Path) -> None:
    for path in itertools.chain(tiny_root.rglob("*.png")):
        with Image.open(path) as im:
            assert im.format == "PNG"
            assert im.mode == "L"
            assert im.size == (32, 32)


def test_cough_is_mono_16khz_pcm16_between_one_and_two_seconds(tiny_root: Path) -> None:
    wavs = list(tiny_root.rglob("*.wav"))
    assert len(wavs) == sum(TINY.values()) * len(CLASSES)
    for path in wavs:
        info = sf.info(str(path))
        assert (info.channels, info.samplerate, info.subtype) == (1, 16000, "PCM_16")
        assert 1.0 <= info.duration <= 2.0
        data, _ = sf.read(str(path))
        assert 0 < np.max(np.abs(data)) < 1.0


# ---------------------------------------------------------------------------------------------
# Determinism
# ---------------------------------------------------------------------------------------------


def test_output_is_identical_for_any_worker_count(tmp_path: Path) -> None:
    generate(tmp_path / "a", tiny_spec(), workers=1)
    generate(tmp_path / "b", tiny_spec(), workers=2)
    a, b = all_files(tmp_path / "a"), all_files(tmp_path / "b")
    assert a.keys() == b.keys()
    assert [k for k in a if a[k] != b[k]] == []


def test_different_seed_gives_different_files(tmp_path: Path) -> None:
    generate(tmp_path / "a", tiny_spec(seed=0), workers=1)
    generate(tmp_path / "b", tiny_spec(seed=1), workers=1)
    a, b = all_files(tmp_path / "a"), all_files(tmp_path / "b")
    media = [k for k in a if k.endswith((".png", ".wav"))]
    assert all(a[k] != b[k] for k in media)


def test_spec_key_is_stable_and_sensitive_to_every_field() -> None:
    base = SyntheticSpec()
    assert base.key() == SyntheticSpec().key()
    assert len(base.key()) == 10
    assert SyntheticSpec(per_class={"test": 50, "valid": 50, "train": 400}).key() == base.key()
    changed = [
        SyntheticSpec(per_class={"train": 401, "valid": 50, "test": 50}),
        SyntheticSpec(image_size=64),
        SyntheticSpec(finding_prob={"ct": 0.6, "cxr": 0.6, "cough": 0.5}),
        SyntheticSpec(seed=1),
        SyntheticSpec(sample_rate=22050),
    ]
    assert len({s.key() for s in changed} | {base.key()}) == len(changed) + 1


def test_spec_rejects_invalid_values() -> None:
    with pytest.raises(ValueError):
        SyntheticSpec(finding_prob={"ct": 1.5, "cxr": 0.6, "cough": 0.6})
    with pytest.raises(ValueError):
        SyntheticSpec(finding_prob={"ct": 0.6, "cxr": 0.6})
    with pytest.raises(ValueError):
        SyntheticSpec(per_class={"train": -1, "valid": 1, "test": 1})


# ---------------------------------------------------------------------------------------------
# Bayes ceilings
# ---------------------------------------------------------------------------------------------

SUBSETS = ["ct", "cxr", "cough", "ct+cxr", "ct+cough", "cxr+cough", "ct+cxr+cough"]


def test_ceilings_closed_form_for_p06_balanced() -> None:
    c = ceilings({"ct": 0.6, "cxr": 0.6, "cough": 0.6}, UNIFORM)
    assert list(c) == SUBSETS
    expected = {1: 0.70, 2: 0.88, 3: 0.952}
    for name, acc in c.items():
        assert acc == pytest.approx(expected[len(name.split("+"))], abs=1e-9)


def test_ceilings_grow_with_the_modality_subset() -> None:
    c = ceilings(
        {"ct": 0.3, "cxr": 0.5, "cough": 0.8},
        {"Healthy": 4, "LungsCancer": 1, "Pneumonia": 2, "covid": 3},
    )
    for small, large in itertools.permutations(SUBSETS, 2):
        if set(small.split("+")) < set(large.split("+")):
            assert c[small] <= c[large] + 1e-12


def test_ceilings_edge_cases() -> None:
    never = ceilings({"ct": 0.0, "cxr": 0.0, "cough": 0.0}, UNIFORM)
    always = ceilings({"ct": 1.0, "cxr": 0.0, "cough": 0.0}, UNIFORM)
    assert all(v == pytest.approx(0.25) for v in never.values())  # chance: predict Healthy
    assert always["ct"] == pytest.approx(1.0) and always["cxr"] == pytest.approx(0.25)
    # Rare Healthy: with no finding visible the best guess switches to the most frequent disease.
    skew = ceilings(
        {"ct": 0.1, "cxr": 0.1, "cough": 0.1},
        {"Healthy": 0.1, "LungsCancer": 0.1, "Pneumonia": 0.1, "covid": 0.7},
    )
    assert skew["ct"] == pytest.approx(0.9 * 0.1 + 0.7 * 0.9)


def recompute_empirical(rows: list[dict], subset: str) -> float:
    """Independent re-implementation of the Bayes rule for a balanced split with p < 1."""
    correct = 0
    for row in rows:
        shown = any(int(row[f"{m}_shown"]) for m in subset.split("+"))
        correct += shown or row["label"] == "Healthy"
    return correct / len(rows)


def test_ceilings_json_is_consistent_with_findings_csv(tiny_root: Path) -> None:
    report = json.loads((tiny_root / "ceilings.json").read_text())
    assert report["theoretical"] == pytest.approx(ceilings(tiny_spec().finding_prob, UNIFORM))
    rows = read_findings(tiny_root)
    assert set(report["empirical"]) == set(SPLIT_DIRS)
    for split in SPLIT_DIRS:
        split_rows = [r for r in rows if r["split"] == split]
        assert list(report["empirical"][split]) == SUBSETS
        for subset, acc in report["empirical"][split].items():
            assert acc == pytest.approx(recompute_empirical(split_rows, subset))


# ---------------------------------------------------------------------------------------------
# Caching
# ---------------------------------------------------------------------------------------------


def test_ensure_synthetic_generates_once_then_reuses(tmp_path: Path, monkeypatch, caplog) -> None:
    spec = tiny_spec()
    with caplog.at_level(logging.INFO, logger="mmfusion.data.synthetic"):
        first = ensure_synthetic(tmp_path, spec, workers=1)
    assert len(caplog.records) == 1 and "generated" in caplog.records[0].getMessage()
    assert first == tmp_path / f"synthetic-{spec.key()}"
    assert (first / "generator.json").is_file()
    stamp = (first / "generator.json").stat().st_mtime_ns

    def fail(*args, **kwargs):
        raise AssertionError("generate() must not run again for a cached dataset")

    monkeypatch.setattr(synthetic, "generate", fail)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="mmfusion.data.synthetic"):
        assert ensure_synthetic(tmp_path, spec, workers=1) == first
    assert caplog.records == []
    assert (first / "generator.json").stat().st_mtime_ns == stamp
    leftovers = [p.name for p in tmp_path.iterdir() if p.is_dir() and p != first]
    assert leftovers == []  # the temporary sibling was renamed into place


def test_ensure_synthetic_replaces_an_incomplete_folder(tmp_path: Path) -> None:
    spec = tiny_spec()
    broken = tmp_path / f"synthetic-{spec.key()}"
    (broken / "train").mkdir(parents=True)  # no generator.json: an interrupted run
    assert ensure_synthetic(tmp_path, spec, workers=1) == broken
    assert (broken / "generator.json").is_file()
    assert len(read_findings(broken)) == sum(TINY.values()) * len(CLASSES)


# ---------------------------------------------------------------------------------------------
# No class-dependent nuisance cue
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def stats_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("stats")
    spec = SyntheticSpec(per_class={"train": 30, "valid": 0, "test": 0}, image_size=64, seed=3)
    generate(root, spec, workers=2)
    return root


def _features(root: Path, row: dict) -> dict[str, float]:
    base = root / row["split"]
    ct = np.asarray(Image.open(base / "CT" / row["label"] / f"{row['stem']}.png"), float)
    cxr = np.asarray(Image.open(base / "CXR" / row["label"] / f"{row['stem']}.png"), float)
    info = sf.info(str(base / "Cough sound" / row["label"] / f"{row['stem']}.wav"))
    return {"ct": ct.mean(), "cxr": cxr.mean(), "cough": info.duration}


def test_hidden_findings_leave_no_class_cue(stats_root: Path) -> None:
    """Where a modality does not show the finding, its statistics must not depend on the class."""
    rows = read_findings(stats_root)
    feats = [_features(stats_root, r) for r in rows]
    for m in MODALITIES:
        groups = [
            [
                f[m]
                for r, f in zip(rows, feats, strict=True)
                if r["label"] == c and r[f"{m}_shown"] == "0"
            ]
            for c in CLASSES
        ]
        assert all(len(g) >= 5 for g in groups)
        assert stats.kruskal(*groups).pvalue > 0.01, m
        # and the duration of every cough, shown or not, is class-independent
    durations = [
        [f["cough"] for r, f in zip(rows, feats, strict=True) if r["label"] == c] for c in CLASSES
    ]
    assert stats.kruskal(*durations).pvalue > 0.01


@pytest.mark.parametrize("finding", CLASSES[1:])
def test_a_shown_finding_is_a_local_overlay_on_the_same_patient(finding: str) -> None:
    """Positive control: showing a finding changes a clear local region, nothing else."""
    for i in range(5):
        for render in (render_ct, render_cxr):
            plain = render(np.random.default_rng(i), 64, None).astype(int)
            shown = render(np.random.default_rng(i), 64, finding).astype(int)
            changed = np.abs(shown - plain) > 20
            assert 0.005 < changed.mean() < 0.3, (render.__name__, i)
            assert np.abs(shown - plain).max() > 40, (render.__name__, i)
        plain = render_cough(np.random.default_rng(i), 16000, None)
        shown = render_cough(np.random.default_rng(i), 16000, finding)
        assert len(plain) == len(shown)
        assert np.std(shown - plain) > 0.2 * np.std(plain), i


def test_finding_probability_is_respected(stats_root: Path) -> None:
    rows = [r for r in read_findings(stats_root) if r["label"] != "Healthy"]
    for m in MODALITIES:
        k = sum(int(r[f"{m}_shown"]) for r in rows)
        assert stats.binomtest(k, len(rows), 0.6).pvalue > 1e-3
    assert math.isclose(len(rows), 90)


def test_finding_regions_are_where_the_generator_drew_a_finding(tiny_root):
    spec = tiny_spec()
    for row in read_findings(tiny_root):
        for modality in ("ct", "cxr"):
            region = synthetic.finding_region(spec, row["split"], row["stem"], modality)
            assert region.shape == (32, 32)
            assert region.any() == bool(int(row[f"{modality}_shown"])), (row, modality)
            if region.any():  # a local finding, not the whole image
                assert region.mean() < 0.5, (row, modality, region.mean())
    with pytest.raises(ValueError, match="no patient"):
        synthetic.finding_region(spec, "test", "covid999", "ct")
