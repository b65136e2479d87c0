"""Reading real-shaped data: formats, pairing by stem, the decode cache, and bad input."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from conftest import FIXTURES, REAL_SAMPLE, decoding, make_tree
from mmfusion.data.datamodule import MultimodalDataModule
from mmfusion.data.decoding.audio import MFCC, LogMel, read_audio
from mmfusion.data.decoding.images import read_image
from mmfusion.data.decoding.spec import DecodingSpec
from mmfusion.data.layouts.folders import SplitFolderLayout
from mmfusion.errors import ConfigError, DataError


def datamodule(root: Path, tmp_path: Path, **kwargs) -> MultimodalDataModule:
    kwargs.setdefault("modalities", ["ct", "cxr", "cough"])
    return MultimodalDataModule(
        SplitFolderLayout(root), decoding=decoding(16), cache_dir=tmp_path / "cache", **kwargs
    )


# -- images -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "ext"),
    [("L", ".png"), ("L", ".jpg"), ("RGB", ".jpg"), ("RGB", ".png"), ("L", ".bmp"), ("L", ".tif")],
)
def test_image_formats_become_grayscale_uint8_at_the_training_size(tmp_path, mode, ext):
    rng = np.random.default_rng(0)
    shape = (50, 70, 3) if mode == "RGB" else (50, 70)
    path = tmp_path / f"img{ext}"
    Image.fromarray(rng.integers(0, 255, shape, dtype=np.uint8), mode).save(path)
    array = read_image(path, 32)
    assert array.shape == (32, 32) and array.dtype == np.uint8


def test_16_bit_images_keep_their_range(tmp_path):
    ramp = np.linspace(0, 65535, 64 * 64).reshape(64, 64).astype(np.uint16)
    Image.fromarray(ramp).save(tmp_path / "ct16.png")
    array = read_image(tmp_path / "ct16.png", 64)
    assert array.min() <= 1 and array.max() >= 254  # full 16-bit range maps onto 0..255
    assert len(np.unique(array)) > 200  # not collapsed to the high byte only


def test_spectrogram_jpg_as_cough_reads_as_an_image_only_where_the_data_says_so(tmp_path):
    Image.fromarray(np.zeros((40, 90, 3), np.uint8)).save(tmp_path / "cough1.jpg")
    kaggle = decoding(16, cough={"spectrogram_images": True})  # data=cxr_ct_cough sets it
    assert kaggle.decode("cough", tmp_path / "cough1.jpg").dtype == np.uint8
    with pytest.raises(
        DataError,
        match="cough1.jpg is a JPEG image, but cough files must be audio .*spectrogram_images",
    ):
        decoding(16).decode("cough", tmp_path / "cough1.jpg")


# -- audio --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["cough_8k_stereo.mp3", "cough_48k_mono.mp3"])
def test_mp3_of_any_rate_and_channels_decodes(name):
    spec = read_audio(FIXTURES / name, LogMel(), 32)
    assert spec.shape == (32, 32) and spec.dtype == np.float16
    assert np.isfinite(spec).all() and spec.max() > 0.5


def test_wav_short_and_long_clips_become_fixed_size(tmp_path):
    for seconds in (0.3, 5.0):
        sf.write(
            tmp_path / "a.wav",
            np.random.default_rng(0).standard_normal(int(seconds * 22050)),
            22050,
        )
        assert read_audio(tmp_path / "a.wav", LogMel(duration=1.0), 24).shape == (24, 24)


def test_mfcc_is_an_option(tmp_path):
    sf.write(tmp_path / "a.wav", np.random.default_rng(0).standard_normal(16000), 16000)
    assert read_audio(tmp_path / "a.wav", MFCC(), 20).shape == (20, 20)


@pytest.mark.skipif(not REAL_SAMPLE.is_dir(), reason="../shared/real-sample is not here")
def test_every_real_sample_file_decodes():
    files = sorted(p for p in REAL_SAMPLE.rglob("*") if p.is_file() and p.suffix != ".md")
    assert files
    for path in files:
        modality = path.relative_to(REAL_SAMPLE).parts[0].replace("ct_lungcancer", "ct")
        array = decoding(32).decode(modality, path)
        assert array.shape == (32, 32), path


# -- pairing ------------------------------------------------------------------------------


def test_pairs_by_stem_within_class_and_reports_what_it_drops(tmp_path, caplog):
    root = make_tree(tmp_path / "tree")
    (root / "train" / "Cough sound" / "covid" / "covidtrain1.wav").unlink()
    (root / "train" / "CXR" / "covid" / "covidtrain1.png").rename(
        root / "train" / "CXR" / "covid" / "covidtrain1.jpg"
    )  # extensions may differ
    with caplog.at_level(logging.WARNING):
        samples = SplitFolderLayout(root).samples("train", ["ct", "cxr", "cough"])
    ids = [s.sample_id for s in samples]
    assert "covid/covidtrain1" not in ids and len(ids) == 7
    warnings = [r.getMessage() for r in caplog.records if "dropped" in r.getMessage()]
    assert len(warnings) == 1 and "covid/covidtrain1 (no cough)" in warnings[0]
    for sample in samples:  # every file of a patient carries its stem and class
        stem = sample.sample_id.split("/")[1]
        assert {p.stem for p in sample.files.values()} == {stem}
        assert {p.parent.name for p in sample.files.values()} == {sample.sample_id.split("/")[0]}


def test_the_dropped_stem_is_kept_when_its_modality_is_not_used(tmp_path):
    root = make_tree(tmp_path / "tree")
    (root / "train" / "Cough sound" / "covid" / "covidtrain1.wav").unlink()
    assert len(SplitFolderLayout(root).samples("train", ["ct", "cxr"])) == 8


def test_class_folders_must_agree_across_modalities_and_splits(tmp_path):
    root = make_tree(tmp_path / "tree")
    shutil.rmtree(root / "test" / "CXR" / "covid")
    with pytest.raises(DataError, match=r"class folders disagree: .*test/CXR"):
        SplitFolderLayout(root).classes(["ct", "cxr"])


def test_two_files_with_one_stem_are_refused(tmp_path):
    root = make_tree(tmp_path / "tree")
    folder = root / "train" / "CT" / "covid"
    shutil.copy(folder / "covidtrain0.png", folder / "covidtrain0.jpg")
    with pytest.raises(DataError, match="ambiguous pairing"):
        SplitFolderLayout(root).samples("train", ["ct"])


# -- the data module ------------------------------------------------------------------------


def test_datamodule_serves_normalisable_tensors_per_modality(tiny_tree, tmp_path):
    dm = datamodule(tiny_tree, tmp_path, batch_size=4)
    dm.setup()
    assert dm.class_names == ["Healthy", "covid"]
    assert {s: len(d) for s, d in dm.datasets.items()} == {"train": 8, "val": 4, "test": 4}
    inputs, _labels = next(iter(dm.train_dataloader()))
    assert set(inputs) == {"ct", "cxr", "cough"}
    assert inputs["ct"].shape == (4, 1, 16, 16) and inputs["ct"].dtype.is_floating_point
    assert {m: dm.decoding.normalisation(m).std > 0 for m in dm.decoding} == dict.fromkeys(
        ("ct", "cxr", "cough"), True
    )


def test_second_setup_reads_the_cache_not_the_files(tiny_tree, tmp_path, monkeypatch):
    datamodule(tiny_tree, tmp_path).setup()
    calls = []
    monkeypatch.setattr(DecodingSpec, "decode", lambda *a: calls.append(a))
    datamodule(tiny_tree, tmp_path).setup()
    assert calls == []


def test_an_edited_file_is_decoded_again(tiny_tree, tmp_path, monkeypatch):
    datamodule(tiny_tree, tmp_path).setup()
    edited = tiny_tree / "valid" / "CT" / "covid" / "covidvalid0.png"
    Image.fromarray(np.full((24, 30), 200, np.uint8)).save(edited)
    real_decode, calls = DecodingSpec.decode, []

    def spy(spec: DecodingSpec, modality: str, path: Path):
        calls.append(path)
        return real_decode(spec, modality, path)

    monkeypatch.setattr(DecodingSpec, "decode", spy)
    datamodule(tiny_tree, tmp_path).setup()
    assert edited in calls and len(calls) == 4  # only the valid CT array is rebuilt


# -- bad input: one clear line naming the path or option -----------------------------------


def test_missing_root(tmp_path):
    with pytest.raises(DataError, match=r"data root does not exist: .*nowhere.*data.root"):
        datamodule(tmp_path / "nowhere", tmp_path).prepare_data()


def test_empty_class_folder(tiny_tree, tmp_path):
    for path in (tiny_tree / "train" / "CT" / "covid").iterdir():
        path.unlink()
    with pytest.raises(DataError, match=r"empty class folder .*train/CT/covid"):
        datamodule(tiny_tree, tmp_path).setup()


@pytest.mark.parametrize(
    ("relative", "content", "reason"),
    [
        ("train/CXR/covid/covidtrain2.png", b"\x89PNG\r\n\x1a\n" + b"\0" * 20, "cannot read image"),
        ("train/CT/covid/covidtrain2.png", b"this is text", "cannot read image"),
        ("train/CT/covid/covidtrain2.png", b"", "empty file"),
        (
            "train/Cough sound/covid/covidtrain2.wav",
            b"RIFF\x10\x00\x00\x00WAVE",
            "cannot read audio",
        ),
    ],
)
def test_bad_file_raises_by_default_and_skip_drops_the_patient(
    tiny_tree, tmp_path, relative, content, reason
):
    (tiny_tree / relative).write_bytes(content)
    with pytest.raises(DataError, match=rf"{reason}.*covidtrain2|covidtrain2.*{reason}"):
        datamodule(tiny_tree, tmp_path).setup()
    dm = datamodule(tiny_tree, tmp_path, on_bad_file="skip")
    dm.setup()
    assert list(dm.skipped) == [str(tiny_tree / relative)]
    assert "covid/covidtrain2" not in [s.sample_id for s in dm.datasets["train"].samples]
    assert len(dm.datasets["train"]) == 7


def test_truncated_jpeg_is_a_bad_file(tiny_tree, tmp_path):
    path = tiny_tree / "test" / "CT" / "Healthy" / "Healthytest0.png"
    jpeg = path.with_suffix(".jpg")
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64), dtype=np.uint8)).save(
        jpeg, quality=95
    )
    path.unlink()
    jpeg.write_bytes(jpeg.read_bytes()[:200])
    with pytest.raises(DataError, match=r"Healthytest0\.jpg"):
        datamodule(tiny_tree, tmp_path).setup()


def test_unknown_bad_file_policy_names_the_option(tiny_tree, tmp_path):
    with pytest.raises(ConfigError, match=r"data\.on_bad_file"):
        datamodule(tiny_tree, tmp_path, on_bad_file="ignore")
