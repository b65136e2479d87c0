"""Freezing and MedFuse-style staged training, through Lightning's `BaseFinetuning`: a frozen
encoder gets no gradient, no optimiser slot, and keeps its BatchNorm in eval mode; the stages
log to the run's one MLflow run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from torch import nn

from conftest import run_cli
from mmfusion.training.stages import EncoderFinetuning


def classifier(compose_cfg, *overrides: str):
    cfg = compose_cfg(
        "modality=cxr_cough", "fusion=intermediate", "backbone=simple_cnn", *overrides
    )
    net = instantiate(cfg.fusion, num_classes=2)
    stats = {"mean": 0.5, "std": 0.25, "source": "train"}
    decoding = {m: {"normalisation": stats} for m in ("cxr", "cough")}
    return instantiate(cfg.model, _partial_=True)(
        net=net, class_names=["a", "b"], decoding=decoding, run_config=None
    )


def batchnorms(module: nn.Module) -> list[nn.BatchNorm2d]:
    return [m for m in module.modules() if isinstance(m, nn.BatchNorm2d)]


def test_a_frozen_encoder_gets_no_gradient_no_optimiser_slot_and_keeps_batchnorm_in_eval(
    compose_cfg,
) -> None:
    model = classifier(compose_cfg, "encoder.cxr.freeze=true")
    EncoderFinetuning().freeze_before_training(model)
    model.train()
    cxr, cough = model.net.encoder_for("cxr"), model.net.encoder_for("cough")
    assert batchnorms(cxr) and all(not bn.training for bn in batchnorms(cxr))
    assert all(bn.training for bn in batchnorms(cough))
    assert not any(p.requires_grad for p in cxr.parameters())
    optimised = {id(p) for group in model.configure_optimizers()["optimizer"].param_groups
                 for p in group["params"]}  # fmt: skip
    assert not optimised & {id(p) for p in cxr.parameters()}
    assert {id(p) for p in cough.parameters()} <= optimised
    running_mean = batchnorms(cxr)[0].running_mean.clone()
    x = {"cxr": torch.rand(4, 1, 32, 32), "cough": torch.rand(4, 1, 32, 32)}
    model(x).sum().backward()
    assert torch.equal(batchnorms(cxr)[0].running_mean, running_mean)
    assert all(p.grad is None for p in cxr.parameters())


def test_freeze_encoders_freezes_every_branch_and_unfreezing_adds_a_slower_group(
    compose_cfg, tmp_path: Path
) -> None:
    import lightning.pytorch as pl
    from torch.utils.data import DataLoader

    model = classifier(compose_cfg)
    finetuning = EncoderFinetuning(freeze_all=True, unfreeze_at_epoch=2, lr_factor=0.1)
    rows = [
        ({"cxr": torch.rand(1, 32, 32), "cough": torch.rand(1, 32, 32)}, i % 2) for i in range(8)
    ]
    encoders = [model.net.encoder_for(m) for m in ("cxr", "cough")]
    seen = {}

    class Watch(pl.Callback):  # what the encoders were like in each epoch
        def on_train_epoch_end(self, trainer, module) -> None:
            seen[trainer.current_epoch] = (
                any(p.requires_grad for e in encoders for p in e.parameters()),
                [g["lr"] for g in trainer.optimizers[0].param_groups],
            )

    trainer = pl.Trainer(
        max_epochs=3, callbacks=[finetuning, Watch()], logger=False, limit_val_batches=0,
        enable_checkpointing=False, enable_progress_bar=False, default_root_dir=tmp_path,
    )  # fmt: skip
    trainer.fit(model, DataLoader(rows, batch_size=4))
    assert not seen[0][0] and not seen[1][0] and len(seen[1][1]) == 1  # stage 2: frozen
    assert seen[2][0] and len(seen[2][1]) == 2  # stage 3: unfrozen, their own group
    base_lr = model.configure_optimizers()["optimizer"].param_groups[0]["lr"]
    assert seen[2][1][1] < 0.2 * base_lr  # a tenth of the rate (then the cosine schedule)
    model.train()
    assert all(bn.training for e in encoders for bn in batchnorms(e))


@pytest.mark.slow
def test_staged_training_logs_every_stage_to_one_mlflow_run(tmp_path: Path) -> None:
    from mlflow.tracking import MlflowClient

    args = [
        "mmfusion", "experiment=quick", "modality=cxr_cough", "fusion=intermediate",
        "data.layout.per_class={train: 4, valid: 2, test: 2}", "data.decoding.image_size=16",
        "data.decode_workers=1", "callbacks.explain=null", "callbacks.robustness=null",
        "training=staged", "training.encoder_epochs=1", "training.unfreeze_at_epoch=1",
        "trainer.max_epochs=2",
    ]  # fmt: skip
    result = run_cli(args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    (run_dir,) = (tmp_path / "outputs" / "train" / "runs").iterdir()
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    run_id = json.loads((run_dir / "mlflow_run.json").read_text())[uri]
    client = MlflowClient(uri)
    metrics = client.get_run(run_id).data.metrics
    # stage 1: each encoder alone with its own head, under its own prefix
    assert "stage1/cxr/val/acc" in metrics and "stage1/cough/val/acc" in metrics
    # stages 2 (encoders frozen) and 3 (unfrozen): one fit, the `stage` of each epoch logged
    assert sorted({m.value for m in client.get_metric_history(run_id, "stage")}) == [2.0, 3.0]
    assert "val/acc" in metrics and "test/acc" in metrics
    assert client.get_run(run_id).data.tags["embedding_cache"].startswith("not used")
    assert (run_dir / "stage1" / "cxr" / "best.ckpt").is_file()
