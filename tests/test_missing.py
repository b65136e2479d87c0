"""Missing modalities: presence masks in every fusion, and modality dropout."""

from __future__ import annotations

import pytest
import torch
from hydra.utils import instantiate

from mmfusion.errors import ConfigError
from mmfusion.models.missing import ModalityDropout

ALL = ("ct", "cxr", "cough")


@pytest.fixture
def batch() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    return {m: torch.rand(4, 1, 16, 16) for m in ALL}


def test_modality_dropout_never_removes_every_modality():
    torch.manual_seed(0)
    present = ModalityDropout(0.9)(list(ALL), 5000, torch.device("cpu"))
    kept = torch.stack([present[m] for m in ALL], dim=1)
    assert kept.any(dim=1).all()
    # each modality is lost about p of the time (less, since all-lost rows get one back)
    lost = 1 - kept.float().mean(dim=0)
    assert ((lost > 0.6) & (lost < 0.9)).all()


def test_modality_dropout_rejects_a_probability_of_one():
    with pytest.raises(ConfigError, match="model.modality_dropout=1.0"):
        ModalityDropout(1.0)


@pytest.mark.parametrize("fusion", ["early", "intermediate"])
def test_an_absent_modality_is_never_read(compose_cfg, batch, fusion):
    cfg = compose_cfg(f"fusion={fusion}", "backbone=simple_cnn")
    net = instantiate(cfg.fusion, num_classes=3).eval()
    present = {m: torch.tensor([True, False, True, False]) if m == "cxr" else None for m in ALL}
    present = {m: v for m, v in present.items() if v is not None}
    noisy = {**batch, "cxr": batch["cxr"] + 100 * torch.randn_like(batch["cxr"])}
    with torch.no_grad():
        clean_out, noisy_out = net(batch, present), net(noisy, present)
        full = net(batch)
        without_tensor = net({m: batch[m] for m in ("ct", "cough")})
    absent, kept = (
        torch.tensor([False, True, False, True]),
        torch.tensor([True, False, True, False]),
    )
    assert torch.allclose(clean_out[absent], noisy_out[absent], atol=1e-5)
    assert torch.allclose(clean_out[kept], full[kept], atol=1e-5)
    assert not torch.allclose(clean_out[absent], full[absent], atol=1e-5)
    # no tensor at all for a modality means absent for the whole batch
    all_absent = net(batch, {"cxr": torch.zeros(4, dtype=torch.bool)})
    assert torch.allclose(without_tensor, all_absent, atol=1e-5)


def test_intermediate_fusion_learns_its_missing_modality_token(compose_cfg, batch):
    cfg = compose_cfg("fusion=intermediate", "backbone=simple_cnn")
    net = instantiate(cfg.fusion, num_classes=3)
    present = {"ct": torch.tensor([False, True, True, True])}
    torch.nn.functional.cross_entropy(net(batch, present), torch.tensor([0, 1, 2, 0])).backward()
    assert net.fusion.missing["ct"].grad.abs().sum() > 0
    assert net.fusion.missing["cxr"].grad.abs().sum() == 0
