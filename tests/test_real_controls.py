"""The shortcut controls derived from a built benchmark (benchmarks/real/derive_controls.py)."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks" / "real"))

from derive_controls import central_box, derive, main  # noqa: E402

COLUMNS = ["patient_id", "label", "cxr", "cough", "fold", "sha256_cxr", "sha256_cough"]


def fake_build(root: Path) -> Path:
    """A two-patient build: a bright RGB JPEG and a 16-bit PNG X-ray, 48 kHz and 8 kHz coughs."""
    rng = np.random.default_rng(0)
    (root / "cxr" / "covid").mkdir(parents=True)
    (root / "cxr" / "healthy").mkdir(parents=True)
    (root / "cough" / "covid").mkdir(parents=True)
    (root / "cough" / "healthy").mkdir(parents=True)
    Image.new("RGB", (60, 40), (250, 250, 250)).save(root / "cxr/covid/a.jpg", quality=90)
    deep = (rng.integers(30000, 60000, (50, 50))).astype(np.uint16)
    Image.fromarray(deep, "I;16").save(root / "cxr/healthy/b.png")
    sf.write(root / "cough/covid/a.wav", rng.standard_normal((4800, 2)) * 0.1, 48000)
    sf.write(root / "cough/healthy/b.flac", rng.standard_normal(800) * 0.1, 8000)
    rows = [
        ["a", "covid", "cxr/covid/a.jpg", "cough/covid/a.wav", "0", "x", "x"],
        ["b", "healthy", "cxr/healthy/b.png", "cough/healthy/b.flac", "1", "y", "y"],
    ]
    with (root / "manifest.csv").open("w", newline="") as handle:
        csv.writer(handle).writerows([COLUMNS, *rows])
    (root / "LICENSE-SOURCE.md").write_text("licence of the source\n")
    return root


def manifest(folder: Path) -> list[dict[str, str]]:
    with (folder / "manifest.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_central_box_is_centred_and_spans_the_fraction():
    assert central_box(100, 200, 0.5) == (25, 50, 75, 150)
    with pytest.raises(ValueError, match="between 0 and 1"):
        central_box(100, 100, 1.0)


def test_border_control_blacks_out_the_centre_and_keeps_format_size_mode(tmp_path):
    build = fake_build(tmp_path / "build")
    report = derive(build, tmp_path / "border", "border", central=0.5)
    rows = manifest(tmp_path / "border")
    assert [r["cxr"] for r in rows] == ["cxr/covid/a.jpg", "cxr/healthy/b.png"]
    with Image.open(tmp_path / "border/cxr/covid/a.jpg") as image:
        assert (image.format, image.size, image.mode) == ("JPEG", (60, 40), "RGB")
        pixels = np.asarray(image.convert("L"))
    assert pixels[12:28, 17:43].max() < 10  # the centre is black (JPEG rounding aside)
    assert pixels[:5].min() > 240 and pixels[:, :10].min() > 240  # the border untouched
    with Image.open(tmp_path / "border/cxr/healthy/b.png") as image:
        assert image.mode.startswith("I")  # 16-bit stays 16-bit
        deep = np.asarray(image)
    assert deep[13:37, 13:37].max() == 0 and deep[:12].min() >= 30000
    # audio has no border: copied byte for byte
    assert (tmp_path / "border/cough/covid/a.wav").read_bytes() == (
        build / "cough/covid/a.wav"
    ).read_bytes()
    assert report["central_fraction_masked"] == 0.5
    assert (tmp_path / "border/LICENSE-SOURCE.md").read_text() == "licence of the source\n"


def test_format_control_gives_one_image_format_and_one_audio_rate(tmp_path):
    build = fake_build(tmp_path / "build")
    derive(build, tmp_path / "format", "format", size=32, rate=8000)
    rows = manifest(tmp_path / "format")
    assert [r["cxr"] for r in rows] == ["cxr/covid/a.png", "cxr/healthy/b.png"]
    assert [r["cough"] for r in rows] == ["cough/covid/a.wav", "cough/healthy/b.wav"]
    for row in rows:
        with Image.open(tmp_path / "format" / row["cxr"]) as image:
            assert (image.format, image.mode, image.size) == ("PNG", "L", (32, 32))
        info = sf.info(str(tmp_path / "format" / row["cough"]))
        assert (info.samplerate, info.channels, info.subtype) == (8000, 1, "PCM_16")
    # the 16-bit image keeps its brightness (scaled by 65535, not clipped at 255)
    with Image.open(tmp_path / "format/cxr/healthy/b.png") as image:
        assert 110 < np.asarray(image).mean() < 240
    # the manifest's hashes are those of the derived files, everything else unchanged
    import hashlib

    for row, old in zip(rows, manifest(build), strict=True):
        digest = hashlib.sha256((tmp_path / "format" / row["cxr"]).read_bytes()).hexdigest()
        assert row["sha256_cxr"] == digest
        assert (row["patient_id"], row["label"], row["fold"]) == (
            old["patient_id"],
            old["label"],
            old["fold"],
        )
    report = json.loads((tmp_path / "format/build_report.json").read_text())
    assert report["audio"]["rate"] == 8000 and report["image"]["size"] == [32, 32]


def test_same_build_gives_the_same_control_byte_for_byte(tmp_path):
    build = fake_build(tmp_path / "build")
    for name in ("one", "two"):
        derive(build, tmp_path / name, "format", size=16)
    files = sorted(p.relative_to(tmp_path / "one") for p in (tmp_path / "one").rglob("*.*"))
    assert files
    for rel in files:
        assert (tmp_path / "one" / rel).read_bytes() == (tmp_path / "two" / rel).read_bytes()


def test_bad_arguments_are_one_error_line(tmp_path, capsys):
    build = fake_build(tmp_path / "build")
    with pytest.raises(SystemExit):
        main([str(build), str(tmp_path / "out"), "--control", "border", "--central", "1.5"])
    assert "between 0 and 1" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="must differ"):
        derive(build, build, "border")
    with pytest.raises(SystemExit, match="manifest.csv does not exist"):
        derive(tmp_path / "nothing", tmp_path / "out", "format")
