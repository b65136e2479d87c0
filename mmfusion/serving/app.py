"""The model page: a Gradio app to try a trained model on one patient's files.

One upload per modality the model was trained on (any subset; the others are absent, as the
model's missing-modality setting handles them), example patients of the synthetic benchmark one
click away, and for each prediction: the class probabilities (bars and exact values), the
Grad-CAM overlay per image modality and on the cough spectrogram, each modality's contribution
(`mmfusion.serving.analysis`), under the model's identity (`model_card`) and a research-use note.

Files go through `Predictor`, so they are decoded and predicted exactly as by
`python -m mmfusion.predict`. A file that cannot be used (wrong modality, unreadable, too large)
shows one message on the page; no upload can stop the server. The page loads nothing from the
internet and sends no usage statistics (Gradio's analytics are switched off before import).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from mmfusion.data.layouts.folders import SplitFolderLayout
from mmfusion.data.synthetic import SyntheticSpec, ensure_synthetic
from mmfusion.errors import DataError, MmfusionError
from mmfusion.evaluation.figures import MODALITY_TITLES
from mmfusion.serving.analysis import Analysis, analyse
from mmfusion.serving.model_card import ModelCard
from mmfusion.serving.predictor import Predictor

#: no usage statistics, no Hugging Face Hub calls: the page must run offline
OFFLINE_ENV = {"GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1", "DO_NOT_TRACK": "1"}
os.environ.update(OFFLINE_ENV)
import gradio as gr  # noqa: E402  (after the environment that switches its analytics off)

log = logging.getLogger(__name__)
RESEARCH_NOTE = (
    "**Research use only: not a diagnostic device.** This page shows what a model trained in a "
    "research experiment computes for the files given; it has not been validated for clinical "
    "use and must not inform the care of any patient."
)
PROBABILITY_HEADERS = ["class", "probability"]


def check_sizes(files: dict[str, str | None], max_bytes: int) -> None:
    for modality, path in files.items():
        if path and Path(path).stat().st_size > max_bytes:
            size = Path(path).stat().st_size / 2**20
            raise DataError(
                f"{modality}: {Path(path).name} is {size:.1f} MB, more than the "
                f"{max_bytes / 2**20:.0f} MB this page accepts"
            )


def respond(
    predictor: Predictor, max_bytes: int, paths: Sequence[str | None]
) -> tuple[str, dict, pd.DataFrame, list, pd.DataFrame]:
    """The page's outputs for the uploaded files: (message, label, probability table, overlays,
    contribution table). Any failure becomes the message, with the other outputs empty."""
    files = {m: p for m, p in zip(predictor.modalities, paths, strict=True) if p}
    empty = pd.DataFrame()
    try:
        check_sizes(files, max_bytes)
        result = analyse(predictor, files)
    except MmfusionError as err:
        return f"⚠️ {err}", {}, empty, [], empty
    except Exception as err:  # a bug must not take the page down: say so, keep the traceback
        log.exception("analysing %s failed", files)
        return f"⚠️ could not analyse these files: {type(err).__name__}: {err}", {}, empty, [], empty
    probabilities = pd.DataFrame(
        [[c, round(p, 4)] for c, p in result.probabilities.items()], columns=PROBABILITY_HEADERS
    )
    overlays, contributions = result.overlays, result.contributions
    return message(result), result.probabilities, probabilities, overlays, contributions


def message(result: Analysis) -> str:
    shown = f"Predicted **{result.prediction}** ({result.probabilities[result.prediction]:.1%})"
    return shown + (f"; absent: {', '.join(result.missing)}" if result.missing else "")


def synthetic_examples(parent: Path, modalities: Sequence[str]) -> list[tuple[str, dict]]:
    """One test patient per class of the synthetic benchmark, generated under `parent` on first
    use (0.5 MB; the same files as the default benchmark's first test patient of each class)."""
    root = ensure_synthetic(Path(parent), SyntheticSpec(per_class={"test": 1}))
    samples = SplitFolderLayout(root).samples("test", list(modalities))
    return [(f"synthetic {s.sample_id.split('/')[0]}", dict(s.files)) for s in samples]


def build_app(
    predictor: Predictor,
    card: ModelCard,
    examples: Sequence[tuple[str, dict[str, Path]]] = (),
    max_bytes: int = 20 * 2**20,
) -> gr.Blocks:
    """The page for `predictor`; `examples` are (label, {modality: file}) patients."""
    with gr.Blocks(title="mmfusion model page", analytics_enabled=False) as page:
        gr.Markdown("# mmfusion: try a trained model")
        gr.Markdown(RESEARCH_NOTE, elem_id="research-note")
        gr.Markdown(card.markdown(), elem_id="model-card")
        with gr.Row():
            uploads = [
                gr.File(
                    label=f"{MODALITY_TITLES.get(m, m).split()[0]}: {predictor.accepts(m)}",
                    type="filepath",
                    elem_id=f"upload-{m}",
                )
                for m in predictor.modalities
            ]
        if examples:
            gr.Examples(
                examples=[
                    [str(files[m]) if files.get(m) else None for m in predictor.modalities]
                    for _, files in examples
                ],
                inputs=uploads,
                example_labels=[label for label, _ in examples],
                label="Example patients of the synthetic benchmark (not patient data)",
            )
        button = gr.Button("Predict", variant="primary", elem_id="predict")
        status = gr.Markdown("Upload at least one file, then press Predict.", elem_id="message")
        with gr.Row():
            bars = gr.Label(label="Class probabilities", elem_id="label")
            table = gr.Dataframe(
                headers=PROBABILITY_HEADERS, label="Probabilities", elem_id="probabilities"
            )
        overlays = gr.Gallery(label="Grad-CAM per modality", columns=3, elem_id="gradcam")
        contributions = gr.Dataframe(
            label="Modality contributions (drop in the predicted class's probability when the "
            "modality is replaced by its training mean; fusion weights where the fusion has them)",
            elem_id="contributions",
        )
        button.click(
            lambda *paths: respond(predictor, max_bytes, paths),
            inputs=uploads,
            outputs=[status, bars, table, overlays, contributions],
        )
    return page
