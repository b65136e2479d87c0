"""Every kind of bad input the issue lists: by default one line naming the file and the reason;
with data.on_bad_file=skip the whole patient is dropped, counted, and listed for MLflow."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from test_dicom import phantom, write_dicom

from conftest import FIXTURES, REPO, decoding, folder_job, make_tree, mlflow_runs, run_ok
from mmfusion.data.datamodule import MultimodalDataModule
from mmfusion.data.layouts.folders import SplitFolderLayout
from mmfusion.errors import DataError

PATIENT = ("train", "covid", "covidtrain1")


def _file(root: Path, modality_dir: str, ext: str) -> Path:
    split, label, stem = PATIENT
    return root / split / modality_dir / label / f"{stem}{ext}"


def _replace(old: Path, new: Path, content: bytes) -> Path:
    old.unlink()
    new.write_bytes(content)
    return new


def _png_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64), np.uint8)).save(
        buffer, "PNG"
    )
    return buffer.getvalue()


def _truncated_png(root):
    png = _file(root, "CXR", ".png")
    return _replace(png, png, _png_bytes()[:300])


def _text_as_png(root):
    png = _file(root, "CT", ".png")
    return _replace(png, png, b"patient notes, not an image\n")


def _zero_length_wav(root):
    wav = _file(root, "Cough sound", ".wav")
    return _replace(wav, wav, b"")


def _text_as_wav(root):
    wav = _file(root, "Cough sound", ".wav")
    return _replace(wav, wav, b"this is not audio" * 40)


def _truncated_mp3(root):
    wav = _file(root, "Cough sound", ".wav")
    return _replace(
        wav, wav.with_suffix(".mp3"), (FIXTURES / "cough_48k_mono.mp3").read_bytes()[:200]
    )


def _image_as_mp3(root):
    wav = _file(root, "Cough sound", ".wav")
    return _replace(wav, wav.with_suffix(".mp3"), _png_bytes())


def _dicom_without_pixels(root):
    png = _file(root, "CT", ".png")
    png.unlink()
    return write_dicom(png.with_suffix(".dcm"), phantom(), pixels=False)


def _mp3_in_ct_folder(root):
    png = _file(root, "CT", ".png")
    return _replace(png, png.with_suffix(".mp3"), (FIXTURES / "cough_48k_mono.mp3").read_bytes())


def _wav_named_png_as_cxr(root):
    png = _file(root, "CXR", ".png")
    return _replace(png, png, _file(root, "Cough sound", ".wav").read_bytes())


CASES = {
    "truncated png": (_truncated_png, "cannot read image"),
    "text named .png": (_text_as_png, "cannot read image"),
    "zero-length file": (_zero_length_wav, "empty file"),
    "non-audio .wav": (_text_as_wav, "not decodable audio"),
    "truncated .mp3": (_truncated_mp3, "not decodable audio"),
    "image named .mp3": (_image_as_mp3, "is a PNG image, but cough files must be audio"),
    "MP3 in the CT folder": (_mp3_in_ct_folder, "is MP3 audio, but ct files must be images"),
    "WAV named .png as CXR": (_wav_named_png_as_cxr, "is WAV audio, but cxr files must be images"),
    "DICOM without pixel data": (_dicom_without_pixels, "no pixel data"),
}

ALL = ["ct", "cxr", "cough"]


def datamodule(root: Path, tmp_path: Path, **kwargs) -> MultimodalDataModule:
    layout = SplitFolderLayout(root)
    return MultimodalDataModule(layout, ALL, decoding(16), cache_dir=tmp_path / "c", **kwargs)


@pytest.mark.parametrize("case", list(CASES))
def test_bad_file_raises_one_line_or_skip_drops_the_patient(tmp_path, case):
    make_bad, reason = CASES[case]
    root = make_tree(tmp_path / "tree")
    bad = make_bad(root)
    with pytest.raises(DataError, match=reason) as raised:
        datamodule(root, tmp_path).setup()
    assert str(bad) in str(raised.value) and "\n" not in str(raised.value)
    dm = datamodule(root, tmp_path, on_bad_file="skip")
    dm.setup()
    assert list(dm.skipped) == [str(bad)] and reason in dm.skipped[str(bad)]
    train_ids = [s.sample_id for s in dm.datasets["train"].samples]
    assert "covid/covidtrain1" not in train_ids and len(train_ids) == 7  # the whole patient


def _unprivileged(code: str) -> subprocess.CompletedProcess:
    """Run Python without the root capabilities that ignore file permissions."""
    command = [sys.executable, "-c", code]
    if os.geteuid() == 0:
        if not shutil.which("setpriv"):
            pytest.skip("running as root without setpriv: permissions cannot be enforced")
        caps = "-dac_override,-dac_read_search"
        command = ["setpriv", f"--inh-caps={caps}", f"--bounding-set={caps}", *command]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "tests")])}
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)


UNREADABLE_FOLDER = """
import sys
from pathlib import Path
from test_bad_files import datamodule
from mmfusion.errors import DataError
root, tmp = Path(sys.argv[1]), Path(sys.argv[2])
try:
    datamodule(root, tmp).setup()
except DataError as err:
    print("RAISED", err)
# the folder holds every covid train CT: skipping it empties the class, which stops a run
# unless the user allows it (data.min_per_class); here the count of dropped patients is checked
dm = datamodule(root, tmp, on_bad_file="skip", min_per_class={"train": 0})
dm.setup()
print("SKIPPED", list(dm.skipped), len(dm.datasets["train"]), len(dm.datasets["val"]))
"""


@pytest.mark.slow
def test_unreadable_folder_is_named_or_its_patients_dropped(tmp_path):
    root = make_tree(tmp_path / "tree")
    folder = root / "train" / "CT" / "covid"
    folder.chmod(0)
    try:
        code = UNREADABLE_FOLDER.replace("sys.argv[1]", repr(str(root))).replace(
            "sys.argv[2]", repr(str(tmp_path))
        )
        result = _unprivileged(code)
    finally:
        folder.chmod(0o755)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.splitlines()
    assert lines[0] == f"RAISED cannot read folder {folder}: Permission denied"
    assert lines[1] == f"SKIPPED ['{folder}'] 4 4"  # the 4 covid train patients lack CT now


@pytest.mark.slow
def test_skip_logs_the_bad_file_list_to_mlflow(tmp_path):
    root = make_tree(tmp_path / "tree", {"train": 3, "valid": 1, "test": 1})
    bad = [_text_as_png(root), _truncated_mp3(root)]  # two files of one patient
    tiny = ["backbone=simple_cnn", "trainer.max_epochs=1", "data.decoding.image_size=16"]
    run_ok(folder_job(root, "data.on_bad_file=skip", *tiny, "data.batch_size=4"), tmp_path)
    client, (run,) = mlflow_runs(tmp_path)
    listed = json.loads(
        Path(client.download_artifacts(run.info.run_id, "bad_files.json")).read_text()
    )
    assert sorted(listed) == sorted(str(p) for p in bad)
