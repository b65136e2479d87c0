"""DICOM and 16-bit CT: rescaled to Hounsfield units, then windowed (lung window by default)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

from conftest import decoding, make_tree
from mmfusion.data.datamodule import MultimodalDataModule
from mmfusion.data.decoding.images import read_image
from mmfusion.data.decoding.window import CTWindow
from mmfusion.data.layouts.folders import SplitFolderLayout
from mmfusion.errors import DataError

AIR, LUNG, BONE = -1000.0, -600.0, 400.0


def phantom() -> np.ndarray:
    """32 x 32 HU map: air on the left, bone on the right, a lung-density block in the middle."""
    hu = np.full((32, 32), AIR)
    hu[:, 16:] = BONE
    hu[12:20, 12:20] = LUNG
    return hu


def write_dicom(
    path: Path,
    hu: np.ndarray,
    slope: float = 1.0,
    intercept: float = -1024.0,
    modality: str = "CT",
    photometric: str = "MONOCHROME2",
    pixels: bool = True,
) -> Path:
    """A minimal valid DICOM file storing `hu` through RescaleSlope / RescaleIntercept."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, meta.MediaStorageSOPInstanceUID
    ds.Modality = modality
    ds.Rows, ds.Columns = hu.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, photometric
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.RescaleSlope, ds.RescaleIntercept = slope, intercept
    if pixels:
        ds.PixelData = np.round((hu - intercept) / slope).astype(np.uint16).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def _expected(hu: float, window: CTWindow) -> int:
    low = window.center - window.width / 2
    return round(np.clip((hu - low) / window.width, 0, 1) * 255)


def _regions(array: np.ndarray) -> tuple[int, int, int]:
    return int(array[4, 4]), int(array[16, 16]), int(array[4, 28])  # air, lung block, bone


def test_dicom_ct_is_rescaled_to_hu_and_lung_windowed_by_default(tmp_path):
    array = read_image(write_dicom(tmp_path / "ct.dcm", phantom()), 32, CTWindow())
    lung_window = CTWindow()
    assert _regions(array) == (
        _expected(AIR, lung_window),  # about 60: air is dark but not clipped
        _expected(LUNG, lung_window),  # the window centre: mid grey
        255,  # bone is above the lung window
    )


def test_window_is_configurable(tmp_path):
    mediastinal = CTWindow(center=40, width=400)
    array = read_image(write_dicom(tmp_path / "ct.dcm", phantom()), 32, mediastinal)
    assert _regions(array) == (0, 0, 255)  # lung and air both below a soft-tissue window


def test_slope_and_intercept_are_applied(tmp_path):
    plain = read_image(write_dicom(tmp_path / "a.dcm", phantom()), 32, CTWindow())
    scaled = read_image(
        write_dicom(tmp_path / "b.dcm", phantom(), slope=2.0, intercept=-2048.0), 32, CTWindow()
    )
    np.testing.assert_array_equal(plain, scaled)


def test_16_bit_png_ct_with_a_known_offset_is_windowed_like_dicom(tmp_path):
    Image.fromarray((phantom() + 1024).astype(np.uint16)).save(tmp_path / "ct16.png")
    window = CTWindow(png_hu_offset=1024)
    from_png = read_image(tmp_path / "ct16.png", 32, window)
    from_dicom = read_image(write_dicom(tmp_path / "ct.dcm", phantom()), 32, window)
    np.testing.assert_array_equal(from_png, from_dicom)


def test_non_ct_dicom_uses_its_own_grey_scale_and_monochrome1_is_inverted(tmp_path):
    ramp = np.tile(np.linspace(0, 1000, 32), (32, 1))
    normal = read_image(write_dicom(tmp_path / "a.dcm", ramp, 1, 0, "DX"), 32, CTWindow())
    inverted = read_image(
        write_dicom(tmp_path / "b.dcm", ramp, 1, 0, "DX", "MONOCHROME1"), 32, CTWindow()
    )
    assert normal[0, 0] == 0 and normal[0, -1] == 255
    np.testing.assert_array_equal(inverted, 255 - normal)


def test_dicom_without_pixel_data_is_a_named_bad_file(tmp_path):
    path = write_dicom(tmp_path / "report.dcm", phantom(), pixels=False)
    with pytest.raises(DataError, match=r"report\.dcm: no pixel data"):
        read_image(path, 32, CTWindow())


def test_text_named_dcm_is_a_named_bad_file(tmp_path):
    (tmp_path / "x.dcm").write_text("not a dicom file")
    with pytest.raises(DataError, match=r"cannot read DICOM .*x\.dcm"):
        read_image(tmp_path / "x.dcm", 32, CTWindow())


def test_dicom_ct_trains_through_the_data_module_and_the_window_keys_the_cache(tmp_path):
    root = make_tree(tmp_path / "tree", {"train": 2, "valid": 1, "test": 1})
    for png in sorted((root).glob("*/CT/*/*.png")):
        hu = phantom() + (np.asarray(Image.open(png), np.float32).mean() - 128)
        write_dicom(png.with_suffix(".dcm"), hu)
        png.unlink()

    def ct_array(window: dict) -> np.ndarray:
        spec = decoding(32, ct={"window": window})
        dm = MultimodalDataModule(
            SplitFolderLayout(root), ["ct"], spec, cache_dir=tmp_path / "cache"
        )
        dm.setup()
        assert len(dm.datasets["train"]) == 4
        return np.asarray(dm.datasets["train"].arrays["ct"])

    lung, mediastinal = ct_array({}), ct_array({"center": 40, "width": 400})
    assert not np.array_equal(lung, mediastinal)
    assert (mediastinal[:, 16, 16] == 0).all() and (lung[:, 16, 16] > 64).all()
