"""The one LightningModule: cross-entropy training of any network (`networks`), with metrics."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchmetrics import MeanMetric, MetricCollection
from torchmetrics.classification import (
    MulticlassAccuracy,
    MulticlassAUROC,
    MulticlassConfusionMatrix,
    MulticlassF1Score,
    MulticlassPrecision,
    MulticlassRecall,
)

from mmfusion.models.contracts import AuxiliaryLoss
from mmfusion.models.missing import ModalityDropout, Present

#: the checkpoint key naming the mmfusion version that wrote it
VERSION_KEY = "mmfusion_version"
# (inputs, labels) or (inputs, labels, present) once modality dropout has masked the batch
Batch = tuple[dict[str, Tensor], Tensor] | tuple[dict[str, Tensor], Tensor, Present]


def classification_metrics(num_classes: int) -> MetricCollection:
    """Accuracy and macro precision / recall / F1 / AUROC, the figures every run reports."""
    return MetricCollection(
        {
            "acc": MulticlassAccuracy(num_classes, average="micro"),
            "precision": MulticlassPrecision(num_classes, average="macro"),
            "recall": MulticlassRecall(num_classes, average="macro"),
            "f1": MulticlassF1Score(num_classes, average="macro"),
            "auroc": MulticlassAUROC(num_classes, average="macro"),
        }
    )


def channel_statistic(value: float | Sequence[float]) -> Tensor:
    """A scalar, or one value per channel shaped (C, 1, 1) to broadcast over (B, C, H, W)."""
    if isinstance(value, int | float):
        return torch.tensor(float(value))
    return torch.tensor([float(v) for v in value]).view(-1, 1, 1)


class FusionClassifier(pl.LightningModule):
    """Normalises each modality, augments in training, classifies with `net`."""

    def __init__(
        self,
        net: nn.Module,
        class_names: Sequence[str],
        decoding: Mapping[str, Mapping[str, Any]],
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Callable[..., Any] | None = None,
        augment: nn.Module | None = None,
        run_config: Mapping[str, Any] | None = None,
        channels_last: bool = False,
        compile: bool | Mapping[str, Any] = False,
        modality_dropout: float = 0.0,
    ) -> None:
        """`modality_dropout`: the probability that a training sample loses each modality."""
        super().__init__()
        # the checkpoint must rebuild the model alone: keep names, stats and the resolved config
        self.save_hyperparameters(
            ignore=["net", "optimizer", "scheduler", "augment", "compile"], logger=False
        )
        self.net = net
        self.channels_last = channels_last
        if channels_last:  # NHWC convolutions: faster with tensor cores and oneDNN
            self.net = self.net.to(memory_format=torch.channels_last)
        if compile:  # in place, so state_dict keys (and checkpoints) stay those of `net`
            self.net.compile(**(dict(compile) if isinstance(compile, Mapping) else {}))
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.augment = augment
        self.modality_dropout = ModalityDropout(modality_dropout)
        # the decoding spec (plain data, see mmfusion.data.decoding.spec) travels in the
        # checkpoint; its normalisation statistics (fitted on train, or fixed by a pretrained
        # encoder: then one per channel, the grayscale input repeated on those channels) are
        # applied here
        for modality, spec in decoding.items():
            stats = spec["normalisation"]
            self.register_buffer(f"mean_{modality}", channel_statistic(stats["mean"]))
            self.register_buffer(f"std_{modality}", channel_statistic(stats["std"]))
        # set by the training layer while fit reads cached encoder embeddings instead of files
        self.embedded_inputs = False
        num_classes = len(class_names)
        for split in ("train", "val", "test"):  # attributes, so Lightning moves and resets them
            setattr(
                self,
                f"{split}_metrics",
                classification_metrics(num_classes).clone(prefix=f"{split}/"),
            )
            setattr(self, f"{split}_loss", MeanMetric())
        self.confusion = MulticlassConfusionMatrix(num_classes)
        self.test_probs: list[Tensor] = []
        self.test_labels: list[Tensor] = []

    def normalise(self, inputs: dict[str, Tensor]) -> dict[str, Tensor]:
        """(x - mean) / std per modality; a grayscale (B, 1, H, W) input is repeated on as many
        channels as its statistics have (an RGB-pretrained encoder reads three)."""
        layout = torch.channels_last if self.channels_last else torch.contiguous_format
        out = {}
        for m, x in inputs.items():
            mean, std = getattr(self, f"mean_{m}"), getattr(self, f"std_{m}")
            if mean.ndim and x.shape[1] == 1:
                x = x.expand(-1, mean.shape[0], *x.shape[2:])
            out[m] = ((x - mean) / std).contiguous(memory_format=layout)
        return out

    def forward(self, inputs: dict[str, Tensor], present: Present | None = None) -> Tensor:
        """Logits for raw inputs in [0, 1] (images) or feature units (spectrograms); with
        `embedded_inputs`, for the encoders' cached embeddings."""
        if self.embedded_inputs:
            return self.net.fuse(inputs, present)
        return self.net(self.normalise(inputs), present)

    def on_after_batch_transfer(self, batch: Batch, dataloader_idx: int) -> Batch:
        inputs, labels, *rest = batch
        if self.trainer.training and self.augment is not None and not self.embedded_inputs:
            inputs = self.augment(inputs)
        if self.trainer.training and self.modality_dropout.p > 0 and len(inputs) > 1:
            present = self.modality_dropout(list(inputs), len(labels), labels.device)
            return inputs, labels, present
        return (inputs, labels, *rest)

    def _step(self, batch: Batch, split: str) -> tuple[Tensor, Tensor]:
        inputs, labels, *rest = batch
        logits = self(inputs, rest[0] if rest else None)
        loss = F.cross_entropy(logits, labels)
        if split == "train" and isinstance(self.net, AuxiliaryLoss):
            loss = loss + self.net.extra_loss(labels)
        probs = logits.float().softmax(dim=1)
        getattr(self, f"{split}_metrics").update(probs, labels)
        getattr(self, f"{split}_loss").update(loss.detach(), len(labels))
        return loss, probs

    def _log_metrics(self, split: str) -> None:
        """The split's loss and metrics as metric objects, updated at each step and logged once
        per epoch: Lightning computes them (syncing across processes in its own order on every
        rank) and resets them.

        Logged at every step instead, Lightning moved each one's state to the device at every
        step, AUROC's list of the epoch's predictions included: ~3 ms per step, several percent
        of a 32 px training step on a CPU (benchmarks/throughput.py, row a). Calling `compute()`
        here instead would sync out of Lightning's order and deadlock DDP (rank 0's progress bar
        syncs the epoch's values first).
        """
        self.log(f"{split}/loss", getattr(self, f"{split}_loss"), prog_bar=split != "test")
        self.log_dict(getattr(self, f"{split}_metrics"), prog_bar=split == "val")

    def on_train_epoch_end(self) -> None:
        self._log_metrics("train")

    def on_validation_epoch_end(self) -> None:
        self._log_metrics("val")

    def on_test_epoch_end(self) -> None:
        self._log_metrics("test")

    def training_step(self, batch: Batch, batch_idx: int) -> Tensor:
        return self._step(batch, "train")[0]

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        self._step(batch, "val")

    def on_test_epoch_start(self) -> None:
        self.test_probs.clear()
        self.test_labels.clear()

    def test_step(self, batch: Batch, batch_idx: int) -> None:
        _, probs = self._step(batch, "test")
        self.confusion.update(probs, batch[1])
        self.test_probs.append(probs.detach().cpu())
        self.test_labels.append(batch[1].detach().cpu())

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        from mmfusion import __version__

        checkpoint[VERSION_KEY] = __version__

    def configure_optimizers(self) -> Any:
        # frozen encoders (training.freeze_encoders, encoder.<m>.freeze) are left out; the
        # unfreezing stage adds them as their own parameter group (mmfusion.training.stages)
        trainable = [p for p in self.parameters() if p.requires_grad]
        optimizer = self.optimizer_factory(params=trainable)
        if self.scheduler_factory is None:
            return optimizer
        return {"optimizer": optimizer, "lr_scheduler": self.scheduler_factory(optimizer)}
