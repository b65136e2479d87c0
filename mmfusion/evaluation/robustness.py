"""Robustness of a trained fusion on the test split: each modality removed, and noise curves.

After the test pass, the model is evaluated again (a) with each modality absent (presence mask
False, as for a patient without that exam) and (b) with Gaussian noise of increasing standard
deviation added to one modality at a time, and to all at once. Noise is in input units (images
and log-mel maps lie in [0, 1]), seeded, identical for every model. Each noise curve is
summarised as MultiBench does, by the area under the accuracy-vs-noise curve over the noise
range normalised to [0, 1] ("relative robustness"), and by that area over the clean accuracy
(how much of its clean accuracy the model keeps).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback
from scipy.integrate import trapezoid
from torch import Tensor
from torchmetrics.functional.classification import (
    multiclass_accuracy,
    multiclass_auroc,
    multiclass_f1_score,
)

from mmfusion.evaluation.markdown import markdown_table
from mmfusion.tracking.loggers import log_artifact

log = logging.getLogger(__name__)
Perturb = Callable[[dict[str, Tensor], int], tuple[dict[str, Tensor], dict[str, Tensor] | None]]


@torch.no_grad()
def evaluate(model: pl.LightningModule, loader: Iterable, perturb: Perturb) -> dict[str, float]:
    """Accuracy, macro F1 and macro AUROC of `model` on `loader` under one perturbation."""
    probs, labels = [], []
    for index, (inputs, target, *_) in enumerate(loader):
        inputs = {m: x.to(model.device) for m, x in inputs.items()}
        inputs, present = perturb(inputs, index)
        probs.append(model(inputs, present).float().softmax(dim=1).cpu())
        labels.append(target)
    p, y = torch.cat(probs), torch.cat(labels)
    classes = p.shape[1]
    return {
        "acc": float(multiclass_accuracy(p, y, classes, average="micro")),
        "f1": float(multiclass_f1_score(p, y, classes, average="macro")),
        "auroc": float(multiclass_auroc(p, y, classes, average="macro")),
    }


def clean(inputs: dict[str, Tensor], index: int) -> tuple[dict[str, Tensor], None]:
    return inputs, None


def without(modality: str) -> Perturb:
    def perturb(inputs: dict[str, Tensor], index: int):
        batch = next(iter(inputs.values())).shape[0]
        absent = torch.zeros(batch, dtype=torch.bool, device=inputs[modality].device)
        return inputs, {modality: absent}

    return perturb


def gaussian_noise(modalities: Sequence[str], sigma: float, seed: int) -> Perturb:
    """Adds N(0, sigma^2) to the named modalities; the same draw for every model (seeded)."""

    def perturb(inputs: dict[str, Tensor], index: int):
        generator = torch.Generator().manual_seed(seed + index)
        noisy = dict(inputs)
        for m in sorted(inputs):  # fixed order, so a modality's draw does not depend on others
            noise = torch.randn(inputs[m].shape, generator=generator) * sigma
            if m in modalities:
                noisy[m] = inputs[m] + noise.to(inputs[m].device, inputs[m].dtype)
        return noisy, None

    return perturb


def curve_area(levels: Sequence[float], values: Sequence[float]) -> float:
    """Trapezoidal area under values(levels), with the level range scaled to [0, 1]."""
    span = max(levels) - min(levels)
    return float(trapezoid(values, levels) / span) if span > 0 else float(values[0])


def robustness_report(
    model: pl.LightningModule,
    loader: Iterable,
    modalities: Sequence[str],
    noise_levels: Sequence[float],
    seed: int = 0,
) -> dict:
    """Rows (condition, modality, level, metrics) and per-curve summaries."""
    base = evaluate(model, loader, clean)
    rows = [{"condition": "clean", "modality": "", "level": 0.0, **base}]
    if len(modalities) > 1:
        for m in modalities:
            rows.append(
                {
                    "condition": "without",
                    "modality": m,
                    "level": 0.0,
                    **evaluate(model, loader, without(m)),
                }
            )
    curves = {}
    groups = {m: [m] for m in modalities}
    if len(modalities) > 1:
        groups["all"] = list(modalities)
    for name, group in groups.items():
        accs = []
        for sigma in noise_levels:
            scores = (
                base if sigma == 0 else evaluate(model, loader, gaussian_noise(group, sigma, seed))
            )
            rows.append({"condition": "noise", "modality": name, "level": float(sigma), **scores})
            accs.append(scores["acc"])
        area = curve_area(noise_levels, accs)
        curves[name] = {
            "levels": [float(s) for s in noise_levels],
            "acc": accs,
            "relative_robustness": area,
            "retained": area / base["acc"] if base["acc"] > 0 else float("nan"),
        }
    return {"clean": base, "rows": rows, "noise_curves": curves}


def flat_metrics(report: dict) -> dict[str, float]:
    """The report as tracker metrics, e.g. robust/without_ct/acc, robust/noise_all/relative."""
    metrics = {}
    for row in report["rows"]:
        if row["condition"] == "without":
            for key in ("acc", "f1", "auroc"):
                metrics[f"robust/without_{row['modality']}/{key}"] = row[key]
    for name, curve in report["noise_curves"].items():
        metrics[f"robust/noise_{name}/relative_robustness"] = curve["relative_robustness"]
        metrics[f"robust/noise_{name}/retained"] = curve["retained"]
    return metrics


def plot_curves(report: dict, path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 4))
    for name, curve in report["noise_curves"].items():
        ax.plot(
            curve["levels"],
            curve["acc"],
            marker="o",
            label=f"{name} ({curve['relative_robustness']:.2f})",
        )
    ax.set(xlabel="Gaussian noise std (input units)", ylabel="test accuracy", ylim=(0, 1.02))
    ax.set_title("Accuracy under noise (legend: relative robustness)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


class RobustnessEvaluation(Callback):
    """After testing, write robustness.{json,csv,png} to the run dir and log them to MLflow."""

    def __init__(
        self,
        output_dir: str,
        noise_levels: Sequence[float] = (0.0, 0.1, 0.2, 0.4, 0.8),
        seed: int = 0,
    ) -> None:
        self.output_dir = Path(output_dir)
        self.noise_levels = list(noise_levels)
        self.seed = seed
        self.report: dict | None = None

    def on_test_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.is_global_zero or trainer.datamodule is None:
            return
        loader = trainer.datamodule.test_dataloader()
        modalities = list(trainer.datamodule.modalities)
        was_training = pl_module.training
        pl_module.eval()
        self.report = robustness_report(pl_module, loader, modalities, self.noise_levels, self.seed)
        pl_module.train(was_training)
        self._save(trainer)

    def _save(self, trainer: pl.Trainer) -> None:
        import pandas as pd

        assert self.report is not None
        self.output_dir.mkdir(parents=True, exist_ok=True)
        files = [self.output_dir / "robustness.json", self.output_dir / "robustness.csv"]
        files[0].write_text(json.dumps(self.report, indent=2))
        pd.DataFrame(self.report["rows"]).to_csv(files[1], index=False)
        files.append(plot_curves(self.report, self.output_dir / "robustness.png"))
        metrics = flat_metrics(self.report)
        for logger in trainer.loggers:
            logger.log_metrics(metrics, step=trainer.global_step)
            for name, curve in self.report["noise_curves"].items():  # the curve, step = level index
                for step, acc in enumerate(curve["acc"]):
                    logger.log_metrics({f"robust/noise_{name}/acc": acc}, step=step)
        for path in files:
            log_artifact(trainer.loggers, path, "robustness")
        log.info("robustness: %s", {k: round(v, 4) for k, v in metrics.items()})


def summary_table(run_dirs: Sequence[Path]) -> str:
    """A Markdown table comparing runs' robustness.json (fusion choice and modality dropout from
    the run's saved Hydra config)."""
    from omegaconf import OmegaConf

    def saved(run: Path, name: str):
        path = run / ".hydra" / name
        return OmegaConf.load(path) if path.is_file() else OmegaConf.create()

    header, rows = None, []
    for run in sorted(run_dirs):
        report = json.loads((run / "robustness.json").read_text())
        cfg = saved(run, "config.yaml")
        fusion = OmegaConf.select(saved(run, "hydra.yaml"), "hydra.runtime.choices.fusion")
        fusion = fusion or "?"
        dropout = OmegaConf.select(cfg, "model.modality_dropout", default=0.0)
        without = {r["modality"]: r["acc"] for r in report["rows"] if r["condition"] == "without"}
        curves = report["noise_curves"]
        if header is None:
            header = ["fusion", "modality_dropout", "clean acc"]
            header += [f"without {m}" for m in without] + [f"noise {n} RR" for n in curves]
        cells = [fusion, f"{dropout:g}", f"{report['clean']['acc']:.3f}"]
        cells += [f"{a:.3f}" for a in without.values()]
        cells += [f"{c['relative_robustness']:.3f}" for c in curves.values()]
        rows.append(cells)
    return markdown_table(header, rows) if header else ""
