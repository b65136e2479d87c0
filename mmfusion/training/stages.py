"""Staged training (MedFuse-style), with Lightning's own fine-tuning mechanism.

1. `training.encoder_epochs`: each modality's encoder is trained alone with its own linear head
   (skipped for an encoder loaded with `init_from`); the best epoch on validation is kept.
2. `training.freeze_encoders` (or `encoder.<m>.freeze` per branch): the encoders are frozen
   (`BaseFinetuning.freeze`, BatchNorm included; a frozen encoder also stays in eval mode, see
   `Encoder.train`) and the fusion + head train; with every encoder frozen for the whole fit,
   on cached embeddings (`mmfusion.training.embeddings`).
3. `training.unfreeze_at_epoch`: the encoders are unfrozen at that epoch and join the optimiser
   as their own parameter group at `unfreeze_lr_factor` x the learning rate.

All stages log to the run's one MLflow run: stage 1 under the metric prefix
`stage1/<modality>/` (its own trainer restarts the step count; a prefix keeps its curves apart
and the run's `val/*` / `test/*` those of the final model, which is what the comparison reads;
nested runs would look like more configurations to it), stages 2 and 3 share one fit, whose
`stage` metric says which one each epoch belonged to.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import lightning.pytorch as pl
import torch
from hydra.utils import instantiate
from lightning.pytorch.callbacks import BaseFinetuning
from lightning.pytorch.loggers import Logger
from omegaconf import DictConfig

from mmfusion.models.classifier import FusionClassifier
from mmfusion.models.encoders.base import Encoder
from mmfusion.models.fusion.concat import ConcatFusion
from mmfusion.models.heads import LinearHead
from mmfusion.models.networks import FeatureFusionNet
from mmfusion.training.checkpointing import ModelCheckpoint

log = logging.getLogger(__name__)


def encoders_of(model: FusionClassifier) -> dict[str, Encoder]:
    net = model.net
    if net.no_embedding_cache:  # early fusion: one encoder over the stacked inputs
        return {"all": net.encoder_for(net.modalities[0])}
    return {m: net.encoder_for(m) for m in net.modalities}


class EncoderFinetuning(BaseFinetuning):
    """Stage 2: freeze the encoders marked `freeze` (all of them with `freeze_all`); stage 3:
    unfreeze them at `unfreeze_at_epoch` with `lr_factor` x the base learning rate."""

    def __init__(
        self, freeze_all: bool = False, unfreeze_at_epoch: int | None = None, lr_factor: float = 0.1
    ) -> None:
        super().__init__()
        self.freeze_all = freeze_all
        self.unfreeze_at_epoch = unfreeze_at_epoch
        self.lr_factor = lr_factor
        self.staged = False  # any encoder frozen: the fit logs its `stage` per epoch

    def mark(self, model: FusionClassifier) -> None:
        """Set each encoder's `freeze` flag (before fit: the embedding cache reads it)."""
        for encoder in encoders_of(model).values():
            encoder.freeze = encoder.freeze or self.freeze_all

    def frozen(self, model: pl.LightningModule) -> list[Encoder]:
        return [e for e in encoders_of(model).values() if e.freeze]

    def freeze_before_training(self, pl_module: pl.LightningModule) -> None:
        self.mark(pl_module)
        frozen = self.frozen(pl_module)
        self.staged = bool(frozen)
        if frozen:
            self.freeze(frozen, train_bn=False)
            for encoder in frozen:
                encoder.eval()

    def finetune_function(
        self, pl_module: pl.LightningModule, epoch: int, optimizer: torch.optim.Optimizer
    ) -> None:
        unfreezing = self.unfreeze_at_epoch is not None and epoch == self.unfreeze_at_epoch
        if unfreezing:
            encoders = self.frozen(pl_module)
            lr = optimizer.param_groups[0]["lr"] * self.lr_factor
            for encoder in encoders:
                encoder.freeze = False
                encoder.train()
            groups = len(optimizer.param_groups)
            self.unfreeze_and_add_param_group(encoders, optimizer, lr=lr, train_bn=True)
            if len(optimizer.param_groups) > groups:
                keep_scheduled(pl_module.trainer, optimizer, lr)
            log.info("stage 3: %d encoders unfrozen at epoch %d, lr %.3g", len(encoders), epoch, lr)
        stage = 3 if self.unfreeze_at_epoch is not None and epoch >= self.unfreeze_at_epoch else 2
        if self.staged:
            for logger in pl_module.trainer.loggers:
                logger.log_metrics({"stage": stage}, step=pl_module.trainer.global_step)


def keep_scheduled(trainer: pl.Trainer, optimizer: torch.optim.Optimizer, lr: float) -> None:
    """A parameter group added mid-fit joins the learning-rate schedule (the schedulers keep one
    base rate per group)."""
    optimizer.param_groups[-1].setdefault("initial_lr", lr)
    for config in trainer.lr_scheduler_configs:
        if config.scheduler.optimizer is optimizer and hasattr(config.scheduler, "base_lrs"):
            config.scheduler.base_lrs.append(lr)
            config.scheduler._last_lr = [g["lr"] for g in optimizer.param_groups]


@contextmanager
def metric_prefix(loggers: Iterable[Logger], prefix: str) -> Iterator[None]:
    """Lightning's own logger prefix (`Logger._prefix`), joined with '/' instead of '-'."""
    saved = [(lg, lg._prefix, lg.LOGGER_JOIN_CHAR) for lg in loggers if hasattr(lg, "_prefix")]
    for logger, _, _ in saved:
        logger._prefix, logger.LOGGER_JOIN_CHAR = prefix, "/"
    try:
        yield
    finally:
        for logger, old_prefix, old_join in saved:
            logger._prefix, logger.LOGGER_JOIN_CHAR = old_prefix, old_join


class NoFinalize(Logger):
    """A logger seen through stage 1's trainer: logs, but leaves the run open at the end."""

    def __init__(self, inner: Logger) -> None:
        super().__init__()
        self.inner = inner

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def version(self) -> str | int:
        return self.inner.version

    def log_metrics(self, metrics: dict, step: int | None = None) -> None:
        self.inner.log_metrics(metrics, step)

    def log_hyperparams(self, params, *args, **kwargs) -> None:
        """The run's parameters are the multimodal run's (logged once)."""

    def finalize(self, status: str) -> None:
        """The run goes on after stage 1."""


def train_encoders_alone(
    cfg: DictConfig,
    model: FusionClassifier,
    datamodule: pl.LightningDataModule,
    loggers: list[Logger],
    out: Path,
) -> dict[str, float]:
    """Stage 1: each encoder (not loaded with `init_from`) trained with its own linear head for
    `training.encoder_epochs`; the best validation epoch's weights stay in the encoder.
    Returns {modality: best validation score}."""
    scores = {}
    for modality, encoder in encoders_of(model).items():
        if modality == "all" or encoder.init_from:
            continue
        alone = FeatureFusionNet(
            [modality],
            len(datamodule.class_names),
            encoders={modality: lambda e=encoder: e},
            fusion=ConcatFusion,
            head=LinearHead,
        )
        classifier = instantiate(cfg.model, _partial_=True)(
            net=alone,
            class_names=datamodule.class_names,
            decoding=datamodule.decoding.to_dict(),
            run_config=None,
            modality_dropout=0.0,
        )
        checkpoint = ModelCheckpoint(
            dirpath=out / "stage1" / modality,
            filename="best",
            monitor=cfg.monitor,
            mode=cfg.monitor_mode,
            save_top_k=1,
        )
        prefixed = [NoFinalize(lg) for lg in loggers]
        trainer = instantiate(
            cfg.trainer,
            max_epochs=cfg.training.encoder_epochs,
            callbacks=[checkpoint],
            logger=prefixed or False,
            enable_progress_bar=False,
            enable_model_summary=False,
        )
        with metric_prefix(loggers, f"stage1/{modality}"):
            trainer.fit(classifier, datamodule=datamodule)
        best = torch.load(checkpoint.best_model_path, map_location="cpu", weights_only=True)
        classifier.load_state_dict(best["state_dict"])  # the encoder object is shared
        scores[modality] = float(checkpoint.best_model_score)
        log.info("stage 1: %s encoder alone, best %s %.4f", modality, cfg.monitor, scores[modality])
    return scores
