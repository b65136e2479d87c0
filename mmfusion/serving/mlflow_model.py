"""The best checkpoint of a run as an MLflow pyfunc model, for `mlflow models predict / serve`.

Input: a table with one column per modality of the model (`ct`, `cxr`, `cough`) holding file
paths readable where the model runs (blank / missing = that modality is absent). Output: the
predicted class and one `prob_<class>` column per class. The model is logged "from code"
(mmfusion/serving/pyfunc_model.py, no pickled Python objects) with the checkpoint as an
artifact, read weights-only when the model loads.
"""

from __future__ import annotations

import logging
import tempfile
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import pandas as pd
import torch
from lightning.pytorch.callbacks import Callback

from mmfusion.models.checkpoint import read_checkpoint
from mmfusion.models.classifier import VERSION_KEY
from mmfusion.tracking.loggers import mlflow_loggers

log = logging.getLogger(__name__)
MODEL_FILE = Path(__file__).with_name("pyfunc_model.py")
PACKAGE_DIR = Path(__file__).resolve().parent.parent
RUNTIME = (
    "torch", "torchvision", "lightning", "timm", "torchmetrics", "hydra-core", "omegaconf",
    "librosa", "soundfile", "pillow", "numpy", "pandas", "scipy", "mlflow", "matplotlib", "rich",
)  # fmt: skip


def pinned_requirements() -> list[str]:
    pins = []
    for name in RUNTIME:
        try:
            pins.append(f"{name}=={version(name)}")
        except PackageNotFoundError:
            pins.append(name)
    return pins


def rows_from_frame(frame: pd.DataFrame, modalities: list[str]) -> list[dict]:
    def cell(value: Any) -> str | None:
        return None if value is None or pd.isna(value) or not str(value).strip() else str(value)

    return [{m: cell(r.get(m)) for m in modalities} for r in frame.to_dict("records")]


def model_signature(modalities: list[str], class_names: list[str]):
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    inputs = Schema([ColSpec("string", m, required=False) for m in modalities])
    outputs = Schema(
        [ColSpec("string", "prediction")] + [ColSpec("double", f"prob_{c}") for c in class_names]
    )
    return ModelSignature(inputs=inputs, outputs=outputs)


def inference_checkpoint(checkpoint: Path, out_dir: Path) -> Path:
    """The checkpoint without optimizer / loop state: all a served model reads (an AdamW
    checkpoint is three times its weights; the full one stays in the run's `checkpoints/`)."""
    full = read_checkpoint(checkpoint)
    slim = out_dir / checkpoint.name
    kept = ("state_dict", "hyper_parameters", VERSION_KEY)
    torch.save({k: full[k] for k in kept if k in full}, slim)
    return slim


def log_pyfunc_model(run_id: str, checkpoint: Path, example: pd.DataFrame) -> str:
    """Log the checkpoint's weights as a pyfunc model named `model` in the run; return its URI."""
    import mlflow

    from mmfusion.serving.predictor import Predictor

    with tempfile.TemporaryDirectory() as tmp, mlflow.start_run(run_id=run_id):
        served = inference_checkpoint(checkpoint, Path(tmp))
        predictor = Predictor(served)  # reads the small file, as the served model will
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=str(MODEL_FILE),
            artifacts={"checkpoint": str(served)},
            code_paths=[str(PACKAGE_DIR)],
            signature=model_signature(predictor.modalities, predictor.class_names),
            input_example=example,
            pip_requirements=pinned_requirements(),
        )
    return info.model_uri


class LogBestModel(Callback):
    """After fit: the best checkpoint becomes the run's MLflow model (see module docstring)."""

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        checkpoint = trainer.checkpoint_callback
        runs = mlflow_loggers(trainer.loggers)
        if not (trainer.is_global_zero and runs and checkpoint and checkpoint.best_model_path):
            return
        datamodule = trainer.datamodule
        sample = datamodule.datasets["test"].samples[0]
        example = pd.DataFrame([{m: str(sample.files[m]) for m in datamodule.modalities}])
        for run in runs:
            uri = log_pyfunc_model(run.run_id, Path(checkpoint.best_model_path), example)
            log.info("logged the best checkpoint as MLflow model %s", uri)
