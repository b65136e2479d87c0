"""Lightning callback: after testing, explain the model on the split it was tested on."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import torch

from mmfusion.errors import ConfigError
from mmfusion.evaluation.callback import loop_dataset
from mmfusion.evaluation.summary import first_per_class
from mmfusion.explain import ablation, gradcam
from mmfusion.tracking.loggers import log_artifact

log = logging.getLogger(__name__)


class Explanations(pl.Callback):
    """Grad-CAM per branch for `samples_per_class` samples of each class, modality ablation over
    the split (at most `max_samples`), and the per-sample modality weights of fusions that have
    them. Written to output_dir/explain and logged to MLflow under `explain/`.

    Grad-CAM explains the predicted class against `contrast_class` (the data's healthy class by
    default) when one is set: "why this disease rather than healthy".
    Switch parts off with `gradcam=false` / `ablation=false`, or all with `callbacks.explain=null`.
    """

    def __init__(
        self,
        output_dir: str,
        split: str = "test",
        samples_per_class: int = 2,
        gradcam: bool = True,
        ablation: bool = True,
        max_samples: int | None = None,
        contrast_class: str | None = None,
    ) -> None:
        self.output_dir = Path(output_dir)
        self.split = split
        self.samples_per_class = samples_per_class
        self.gradcam = gradcam
        self.ablation = ablation
        self.max_samples = max_samples
        self.contrast_class = contrast_class

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        class_names = list(pl_module.hparams.class_names)
        if self.contrast_class is not None and self.contrast_class not in class_names:
            raise ConfigError(
                f"callbacks.explain.contrast_class={self.contrast_class!r} is not one of the "
                f"model's classes {class_names} (set it to one of them, or null)"
            )

    def on_test_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        start = time.perf_counter()
        if not trainer.is_global_zero:
            return
        folder = self.output_dir / "explain"
        folder.mkdir(parents=True, exist_ok=True)
        dataset = loop_dataset(trainer)
        class_names = list(pl_module.hparams.class_names)
        was_training = pl_module.training
        pl_module.eval()
        files = []
        if self.gradcam and self.samples_per_class > 0:
            files += self._gradcam(pl_module, dataset, class_names, folder)
        if self.ablation:
            files += self._ablation(pl_module, dataset, class_names, folder)
        pl_module.train(was_training)
        for path in files:
            log_artifact(trainer.loggers, path, "explain")
        took = time.perf_counter() - start
        log.info("explanations of the %s split in %s (%.1f s)", self.split, folder, took)

    def _gradcam(self, model, dataset, class_names, folder: Path) -> list[Path]:
        picked = first_per_class(dataset.labels.tolist(), self.samples_per_class)
        items = [dataset[i] for i in picked]
        inputs = {m: torch.stack([x[m] for x, _ in items]) for m in items[0][0]}
        labels = [int(y) for _, y in items]
        device = next(model.parameters()).device
        with torch.no_grad():
            preds = model({m: x.to(device) for m, x in inputs.items()}).argmax(1).tolist()
        reference = None if self.contrast_class is None else class_names.index(self.contrast_class)
        cams, grids = gradcam.branch_cams(
            model, {m: x.to(device) for m, x in inputs.items()}, preds, reference
        )
        arrays = {m: x[:, 0].numpy() for m, x in inputs.items()}
        maps = folder / f"gradcam_{self.split}.npz"
        np.savez_compressed(
            maps,
            sample_index=np.array(picked),
            label=np.array(labels),
            pred=np.array(preds),
            contrast_class=np.array(self.contrast_class or ""),
            **{f"cam_{m}": c for m, c in cams.items()},
            **{f"cam_grid_{m}": np.array(g) for m, g in grids.items()},
        )
        encoders = {id(model.net.encoder_for(m)) for m in inputs}
        shared = len(inputs) > 1 and len(encoders) == 1
        figure = gradcam.gradcam_figure(
            arrays,
            cams,
            labels,
            preds,
            class_names,
            folder / f"gradcam_{self.split}.png",
            shared,
            self.contrast_class,
        )
        return [figure, maps]

    def _ablation(self, model, dataset, class_names, folder: Path) -> list[Path]:
        if self.max_samples is not None and self.max_samples < len(dataset):
            spread = np.linspace(0, len(dataset) - 1, self.max_samples).round().astype(int)
            dataset = torch.utils.data.Subset(dataset, np.unique(spread).tolist())
        drops, weights = ablation.ablate(model, dataset)
        table = ablation.contribution_table(drops, class_names)
        files = [folder / f"modality_contribution_{self.split}.csv"]
        table.to_csv(files[0], index=False)
        files.append(folder / f"modality_contribution_{self.split}.md")
        files[-1].write_text(ablation.contribution_markdown(table, self.split))
        files.append(
            ablation.contribution_figure(
                table, folder / f"modality_contribution_{self.split}.png", self.split
            )
        )
        if weights is not None:
            files.append(folder / f"modality_weights_{self.split}.csv")
            weights.assign(label_name=[class_names[c] for c in weights.label]).to_csv(
                files[-1], index=False
            )
            files.append(
                ablation.weights_figure(
                    weights,
                    class_names,
                    folder / f"modality_weights_{self.split}.png",
                    type(model.net).__name__,
                )
            )
        return files
