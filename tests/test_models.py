"""Every fusion trains a step on tiny inputs with every modality subset and every backbone."""

from __future__ import annotations

import pytest
import torch
from hydra.utils import instantiate

from conftest import CONF

BACKBONES = [p.stem for p in sorted((CONF / "backbone").glob("*.yaml"))]
FUSIONS = [p.stem for p in sorted((CONF / "fusion").glob("*.yaml"))]
MODALITIES = [p.stem for p in sorted((CONF / "modality").glob("*.yaml"))]


@pytest.fixture(scope="module")
def tiny_batch() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    return {m: torch.rand(2, 1, 32, 32) for m in ("ct", "cxr", "cough")}


def forward_backward(compose_cfg, tiny_batch, *overrides: str) -> None:
    cfg = compose_cfg(*overrides)
    net = instantiate(cfg.fusion, num_classes=4)
    inputs = {m: tiny_batch[m] for m in cfg.modality.names}
    logits = net(inputs)
    assert logits.shape == (2, 4)
    torch.nn.functional.cross_entropy(logits, torch.tensor([0, 3])).backward()
    grads = [p.grad for p in net.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize("modality", MODALITIES)
@pytest.mark.parametrize("fusion", FUSIONS)
def test_every_fusion_trains_on_every_modality_subset(compose_cfg, tiny_batch, fusion, modality):
    forward_backward(
        compose_cfg, tiny_batch, f"fusion={fusion}", "backbone=simple_cnn", f"modality={modality}"
    )


@pytest.mark.slow
@pytest.mark.parametrize("backbone", BACKBONES)
@pytest.mark.parametrize("fusion", ["early", "intermediate", "cross_attention"])
def test_every_backbone_serves_every_kind_of_fusion(compose_cfg, tiny_batch, fusion, backbone):
    """Encoders are used three ways: over stacked input channels (early), for pooled features
    (intermediate and the other feature fusions), for tokens (cross-attention)."""
    forward_backward(
        compose_cfg, tiny_batch, f"fusion={fusion}", f"backbone={backbone}", "modality=ct"
    )


def test_fusion_ignores_modalities_it_was_not_built_for(compose_cfg, tiny_batch):
    cfg = compose_cfg("fusion=intermediate", "backbone=simple_cnn", "modality=ct")
    net = instantiate(cfg.fusion, num_classes=2).eval()
    only_ct = net({"ct": tiny_batch["ct"]})
    assert torch.equal(only_ct, net(tiny_batch))


def test_pretrained_without_hub_cache_or_local_file_is_a_clear_error(
    compose_cfg, tmp_path, monkeypatch
):
    from huggingface_hub import constants

    from mmfusion.errors import ConfigError, find_user_error

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty-hub-cache"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    cfg = compose_cfg("backbone=resnet18", "backbone.pretrained=true")
    with pytest.raises(Exception) as caught:
        instantiate(cfg.fusion, num_classes=2)
    error = find_user_error(caught.value)
    assert isinstance(error, ConfigError)
    assert "backbone.weights_path" in str(error)


def test_pretrained_loads_from_a_local_file(compose_cfg, tmp_path):
    import timm

    source = timm.create_model("resnet18", pretrained=False, num_classes=0)
    torch.save(source.state_dict(), tmp_path / "resnet18.pth")
    cfg = compose_cfg(
        "backbone=resnet18",
        "backbone.pretrained=true",
        f"backbone.weights_path={tmp_path / 'resnet18.pth'}",
        "modality=ct",
    )
    net = instantiate(cfg.fusion, num_classes=2)
    # a 3-channel stem adapted to the one CT channel by timm (summed over colour channels)
    expected = source.conv1.weight.sum(dim=1, keepdim=True)
    assert torch.allclose(net.encoder.body.conv1.weight, expected, atol=1e-5)
