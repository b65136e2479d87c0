"""The metadata-only classifier: file properties alone (never content) against the label."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from mmfusion.data.checker.metadata_baseline import file_metadata, metadata_baseline
from mmfusion.data.layouts.folders import Sample
from mmfusion.errors import DataError

SPLIT_SIZES = {"train": 20, "val": 8, "test": 8}


def image_samples(root: Path, formats: dict[str, str]) -> dict[str, list[Sample]]:
    """Grey noise images of one size; class i saved in `formats[class]`."""
    rng = np.random.default_rng(0)
    samples: dict[str, list[Sample]] = {}
    for split, count in SPLIT_SIZES.items():
        samples[split] = []
        for label, (name, fmt) in enumerate(formats.items()):
            for i in range(count):
                path = root / f"{split}-{name}-{i}.{fmt}"
                Image.fromarray(rng.integers(0, 255, (32, 32), dtype=np.uint8)).save(path)
                samples[split].append(Sample(f"{name}/{split}{i}", label, {"ct": path}))
    return samples


def test_a_format_that_tracks_the_label_is_predicted_from_metadata_alone(tmp_path):
    samples = image_samples(tmp_path, {"covid": "png", "healthy": "jpg"})
    baseline = metadata_baseline(samples, ["ct"], ["covid", "healthy"])
    val = baseline.scores["val"]
    assert val.accuracy == 1.0 and val.chance == 0.5 and val.above_chance
    assert val.ci[0] > 0.75 and val.p_value < 1e-3 and val.n == 16
    assert baseline.scores["test"].accuracy == 1.0
    assert "ct.format" in baseline.features and "ct.width" not in baseline.features  # constant
    assert max(baseline.importance, key=baseline.importance.get) in ("ct.format", "ct.bytes")
    assert "val accuracy 1.000" in baseline.summary()[0] and "chance 0.500" in baseline.summary()[0]


def test_files_that_differ_only_in_content_stay_at_chance(tmp_path):
    samples = image_samples(tmp_path, {"covid": "png", "healthy": "png"})
    val = metadata_baseline(samples, ["ct"], ["covid", "healthy"]).scores["val"]
    assert not val.above_chance and val.ci[0] <= 0.5 <= val.ci[1]


def test_four_classes_one_sample_rate_apart_in_any_order(tmp_path):
    """covid at 48 kHz, the three others at 16 kHz: predicted whatever the class order."""
    rng = np.random.default_rng(0)
    classes = ["asthma", "covid", "healthy", "pneumonia"]
    samples: dict[str, list[Sample]] = {}
    for split, count in SPLIT_SIZES.items():
        samples[split] = []
        for label, name in enumerate(classes):
            rate = 48000 if name == "covid" else 16000
            for i in range(count):
                path = tmp_path / f"{split}-{name}-{i}.wav"
                sf.write(path, rng.standard_normal(rate // 4).astype(np.float32) * 0.1, rate)
                samples[split].append(Sample(f"{name}/{split}{i}", label, {"cough": path}))
    baseline = metadata_baseline(samples, ["cough"], classes)
    val = baseline.scores["val"]
    assert "cough.sample_rate" in baseline.features
    # covid is told apart; the three 16 kHz classes are not: 1/4 + 1/4 * 1/3 at best
    assert val.accuracy == pytest.approx(0.25 + 0.25, abs=0.1) and val.chance == 0.25
    assert val.above_chance


def test_header_facts_of_images_and_audio(tmp_path):
    grey16 = tmp_path / "deep.png"
    Image.fromarray(np.zeros((5, 7), dtype=np.uint16)).save(grey16)
    facts = file_metadata(grey16)
    assert facts["kind"] == "image" and facts["format"] == "PNG"
    assert (facts["width"], facts["height"], facts["bit_depth"]) == (7, 5, 16)
    wav = tmp_path / "a.wav"
    sf.write(wav, np.zeros((8000, 2), dtype=np.float32), 8000, subtype="PCM_16")
    facts = file_metadata(wav)
    assert facts["kind"] == "audio" and facts["codec"] == "PCM_16"
    assert (facts["sample_rate"], facts["channels"], facts["duration"]) == (8000, 2, 1.0)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not an image")
    with pytest.raises(DataError, match="broken.png"):
        file_metadata(broken)
