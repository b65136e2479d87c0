"""Domain-pretrained encoders: torchxrayvision for CXR, the Audio Spectrogram Transformer for
cough. Their weights cannot be downloaded here, so what is tested is what runs offline: the
architectures built without weights, and the one-line error when the weights are missing."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from huggingface_hub import constants
from hydra.utils import instantiate

from mmfusion.errors import ConfigError
from mmfusion.models.encoders.xrv import XRVEncoder


@pytest.fixture
def offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "hub"
    cache.mkdir()
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    return tmp_path


@pytest.mark.parametrize(
    ("weights", "width"),
    [("densenet121-res224-all", 1024), ("resnet50-res512-all", 2048), ("101-elastic", 512)],
)
def test_xrv_architectures_build_without_weights(weights: str, width: int) -> None:
    encoder = XRVEncoder(weights=weights, pretrained=False)
    assert encoder.out_features == width
    with torch.no_grad():
        features = encoder(torch.rand(2, 1, 64, 64))
    assert features.shape == (2, width)
    assert encoder.input_spec() is None  # no weights: the run's own normalisation, fitted


def test_xrv_missing_weights_offline_is_one_line_naming_model_and_file(offline: Path) -> None:
    with pytest.raises(ConfigError) as raised:
        XRVEncoder(weights="densenet121-res224-all", cache_dir=str(offline / "xrv"))
    message = str(raised.value)
    assert "\n" not in message
    assert "densenet121-res224-all" in message and str(offline / "xrv") in message
    assert "https://" in message  # where the file comes from, to fetch it by hand


def test_xrv_unknown_weights_lists_the_library_models() -> None:
    with pytest.raises(ConfigError, match="densenet121-res224-nih"):
        XRVEncoder(weights="densenet121-res224-everything", pretrained=False)


def test_xrv_encoder_is_one_config_choice(compose_cfg) -> None:
    cfg = compose_cfg(
        "modality=cxr", "fusion=intermediate", "encoder/cxr=xrv_densenet121",
        "encoder.cxr.pretrained=false",
    )  # fmt: skip
    net = instantiate(cfg.fusion, num_classes=3)
    assert isinstance(net.encoder_for("cxr"), XRVEncoder)


def test_audio_transformer_missing_weights_offline_is_one_line(offline: Path) -> None:
    from mmfusion.models.encoders.audio_transformer import AudioSpectrogramTransformer

    with pytest.raises(ConfigError) as raised:
        AudioSpectrogramTransformer()
    message = str(raised.value)
    assert "\n" not in message
    assert "MIT/ast-finetuned-audioset-10-10-0.4593" in message and "HF_HUB_OFFLINE=1" in message
