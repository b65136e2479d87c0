"""Lightning callback: after testing, write and log every evaluation artifact of the split."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import torch
from torch.utils.data import Dataset

from mmfusion.evaluation import figures, summary
from mmfusion.evaluation.predictions import write_predictions
from mmfusion.tracking.loggers import log_artifact

log = logging.getLogger(__name__)


def loop_dataset(trainer: pl.Trainer) -> Dataset:
    """The dataset the test loop just ran over (test split in training, any split in evaluate)."""
    loaders = trainer.test_dataloaders
    loader = loaders[0] if isinstance(loaders, Sequence) else loaders
    return loader.dataset


def write_evaluation(
    output_dir: Path,
    split: str,
    probs: torch.Tensor,
    labels: torch.Tensor,
    class_names: Sequence[str],
    dataset: Dataset,
    samples_per_class: int,
) -> tuple[list[Path], dict[str, float]]:
    """All artifacts into output_dir/evaluation (predictions CSV in output_dir); files, metrics."""
    folder = output_dir / "evaluation"
    folder.mkdir(parents=True, exist_ok=True)
    report = summary.classification_report(probs, labels, class_names)
    rel = summary.reliability(probs, labels)
    prevalence = np.bincount(labels.numpy(), minlength=len(class_names)) / len(labels)
    roc, pr = summary.roc_curves(probs, labels), summary.pr_curves(probs, labels)
    (folder / f"classification_report_{split}.json").write_text(json.dumps(report, indent=2))
    (folder / f"classification_report_{split}.md").write_text(
        summary.report_markdown(report, f"Classification report, {split} split")
    )
    (folder / f"calibration_{split}.json").write_text(
        json.dumps(
            {
                "ece": rel.ece,
                "bins": len(rel.count),
                "bin_edges": rel.edges.tolist(),
                "confidence": np.nan_to_num(rel.confidence, nan=-1).tolist(),
                "accuracy": np.nan_to_num(rel.accuracy, nan=-1).tolist(),
                "count": rel.count.tolist(),
                "note": "empty bins hold -1",
            },
            indent=2,
        )
    )
    auc = {name: c.area for name, c in zip(class_names, roc, strict=True)}
    (folder / f"roc_auc_{split}.json").write_text(json.dumps(auc, indent=2))
    picked = summary.first_per_class(labels.tolist(), samples_per_class)
    inputs = [{m: x[0].numpy() for m, x in dataset[i][0].items()} for i in picked]
    files = [
        folder / f"classification_report_{split}.json",
        folder / f"classification_report_{split}.md",
        folder / f"calibration_{split}.json",
        folder / f"roc_auc_{split}.json",
        figures.confusion_figure(
            summary.confusion(probs, labels), class_names, folder / f"confusion_{split}.png", split
        ),
        figures.curves_figure(
            roc, class_names, folder / f"roc_{split}.png", "roc", split, prevalence
        ),
        figures.curves_figure(pr, class_names, folder / f"pr_{split}.png", "pr", split, prevalence),
        figures.reliability_figure(rel, folder / f"reliability_{split}.png", split),
        figures.samples_figure(
            inputs,
            [int(labels[i]) for i in picked],
            probs[picked].numpy(),
            class_names,
            folder / f"samples_{split}.png",
            split,
        ),
    ]
    predictions = write_predictions(
        output_dir / f"{split}_predictions.csv", dataset.samples, probs.numpy(), class_names
    )
    return [predictions, *files], {f"{split}/ece": rel.ece}


class EvaluationArtifacts(pl.Callback):
    """Confusion matrices, ROC / PR curves, classification report, calibration (ECE, reliability
    diagram), the predictions CSV and a sample-predictions figure, on rank 0 after `test`.

    Files go to `output_dir` (the run dir); MLflow gets the CSV at the root and the rest under
    `evaluation/`; `<split>/ece` is logged as a metric and added to the run's metrics.
    """

    def __init__(self, output_dir: str, split: str = "test", samples_per_class: int = 2) -> None:
        self.output_dir = Path(output_dir)
        self.split = split
        self.samples_per_class = samples_per_class

    def on_test_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        start = time.perf_counter()
        if not trainer.is_global_zero or not pl_module.test_probs:
            return
        files, metrics = write_evaluation(
            self.output_dir,
            self.split,
            torch.cat(pl_module.test_probs).float(),
            torch.cat(pl_module.test_labels),
            list(pl_module.hparams.class_names),
            loop_dataset(trainer),
            self.samples_per_class,
        )
        for logger in trainer.loggers:
            logger.log_metrics(metrics)
        # so that metrics.json and the end-of-run summary include them
        trainer.callback_metrics.update({k: torch.tensor(v) for k, v in metrics.items()})
        log_artifact(trainer.loggers, files[0])
        for path in files[1:]:
            log_artifact(trainer.loggers, path, "evaluation")
        took = time.perf_counter() - start
        log.info(
            "evaluation artifacts of the %s split in %s (%.1f s)", self.split, files[1].parent, took
        )
