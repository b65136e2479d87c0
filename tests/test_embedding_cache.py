"""Frozen encoders' embeddings are computed once per split and memory-mapped back, keyed by the
encoder's weights, the decoding spec and the files: a change to any of them writes a new array.
Early fusion has no per-modality encoder, so it never uses the cache and says why."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.utils import instantiate

from mmfusion.cli.train import data_and_model
from mmfusion.training.embeddings import EmbeddingDataModule, embed, why_not_cached
from mmfusion.training.stages import EncoderFinetuning

TINY = [
    "experiment=quick",
    "modality=cxr_cough",
    "data.layout.per_class={train: 4, valid: 2, test: 2}",
    "data.decoding.image_size=16",
    "data.decode_workers=1",
]


def frozen_model(compose_cfg, *overrides: str):
    datamodule, model = data_and_model(compose_cfg(*TINY, *overrides), run_config=None)
    EncoderFinetuning(freeze_all=True).mark(model)
    return model, datamodule


@pytest.mark.slow
def test_embeddings_are_built_once_memory_mapped_and_rebuilt_when_the_weights_change(
    compose_cfg, tmp_path: Path
) -> None:
    model, datamodule = frozen_model(compose_cfg, "fusion=intermediate")
    assert why_not_cached(model.net, unfreezes=False) is None
    cache = tmp_path / "cache"
    first = EmbeddingDataModule(datamodule, model, cache)
    assert first.build_seconds > 0
    files = sorted(p.name for p in (cache / "embeddings").glob("*.npy"))
    assert len(files) == 4  # {train, val} x {cxr, cough}

    again = EmbeddingDataModule(datamodule, model, cache)
    assert again.build_seconds == 0.0
    cached = again.datasets["train"].arrays["cxr"]
    assert isinstance(cached, np.memmap)
    fresh = embed(model, "cxr", datamodule.datasets["train"], batch_size=4)
    np.testing.assert_allclose(np.asarray(cached), fresh, rtol=1e-5, atol=1e-6)
    inputs, labels = again.train_dataloader().dataset.__getitems__([0, 1])
    assert inputs["cxr"].shape == (2, model.net.encoder_for("cxr").out_features)
    assert torch.equal(labels, datamodule.datasets["train"].labels[[0, 1]])

    with torch.no_grad():  # other weights: other embeddings
        next(model.net.encoder_for("cxr").parameters()).add_(1.0)
    changed = EmbeddingDataModule(datamodule, model, cache)
    assert changed.build_seconds > 0
    assert len(list((cache / "embeddings").glob("*.npy"))) == 6  # cxr's two splits again


def test_early_fusion_and_trained_encoders_say_why_they_are_not_cached(compose_cfg) -> None:
    cfg = compose_cfg(*TINY, "fusion=early")
    early = instantiate(cfg.fusion, num_classes=2)
    assert "early fusion fuses the inputs" in why_not_cached(early, unfreezes=False)
    cfg = compose_cfg(*TINY, "fusion=intermediate", "encoder.cough.freeze=true")
    net = instantiate(cfg.fusion, num_classes=2)
    assert "encoders trained: cxr" in why_not_cached(net, unfreezes=False)
    net.encoder_for("cxr").freeze = True
    assert "unfrozen later" in why_not_cached(net, unfreezes=True)
    assert why_not_cached(net, unfreezes=False) is None


def test_the_comparison_says_which_runs_used_the_cache_and_why_early_fusion_did_not() -> None:
    import pandas as pd

    from mmfusion.evaluation.comparison import measured_on
    from mmfusion.tracking.runs import RunRecord

    predictions = pd.DataFrame({"sample_id": ["p1", "p2"], "label_name": ["a", "b"]})
    early = "not used: early fusion fuses the inputs: no encoder sees one modality alone"
    records = [
        RunRecord(str(i), f"run{i}", {"seed": str(i)}, {"embedding_cache": tag}, {}, predictions)
        for i, tag in enumerate(["used", "used", early])
    ]
    lines = measured_on(records)
    assert "- embedding cache (frozen encoders): used (2 runs)" in lines
    assert f"- embedding cache (frozen encoders): {early} (1 runs)" in lines
