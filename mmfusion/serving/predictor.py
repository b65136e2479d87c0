"""A trained model with its decoding: files in, class probabilities out (one patient or many).

Any subset of the model's modalities may be given (the others are passed as absent). Many
patients come from a folder (one sub-folder per modality: `ct`, `cxr`, `cough` or the Kaggle
names `CT`, `CXR`, `Cough sound`; files anywhere below, paired by stem) or a manifest CSV (a
column per modality holding file paths, blank = absent, relative to the manifest; optional
`sample_id`). Files are decoded exactly as in training; the checkpoint is read weights-only.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from mmfusion.data.datamodule import to_float_tensor
from mmfusion.data.decoding.spec import DecodingSpec
from mmfusion.data.layouts.folders import AUDIO_EXTS, DATA_EXTS, IMAGE_EXTS, KAGGLE_MODALITY_DIRS
from mmfusion.errors import ConfigError, DataError
from mmfusion.models.checkpoint import load_classifier

log = logging.getLogger(__name__)
Files = Mapping[str, str | Path | None]
#: what each modality's file shows, for messages about a file given in the wrong place
SUBJECTS = {"ct": "a CT slice", "cxr": "a chest X-ray", "cough": "a cough recording"}


class Predictor:
    """A checkpoint's classifier with its decoding parameters: files in, probabilities out."""

    def __init__(self, ckpt_path: str | Path) -> None:
        self.model = load_classifier(ckpt_path)
        # decoded exactly as in training: the spec saved in the checkpoint
        self.decoding = DecodingSpec.from_dict(self.model.hparams.decoding)
        self.modalities: list[str] = list(self.decoding)
        self.class_names: list[str] = list(self.model.hparams.class_names)
        self.trained_for_missing = float(self.model.hparams.get("modality_dropout", 0.0)) > 0

    def check(self, files: Files) -> None:
        unknown = sorted(set(files) - set(self.modalities))
        if unknown:
            raise ConfigError(f"{unknown[0]}: this model uses {', '.join(self.modalities)} only")
        if not any(files.get(m) for m in self.modalities):
            raise ConfigError(f"no input file: give at least one of {', '.join(self.modalities)}")
        for modality, path in files.items():
            if path and Path(path).suffix.lower() not in self.extensions(modality):
                wanted = "an image" if self.decoding[modality].kind == "image" else "audio"
                raise DataError(
                    f"{modality}: {Path(path).name} is not {wanted} ({self.accepts(modality)})"
                )

    def extensions(self, modality: str) -> frozenset[str]:
        """The file types `modality` is decoded from (by the kind of its decoding)."""
        decoding = self.decoding[modality]
        if decoding.kind == "image":
            return IMAGE_EXTS
        return AUDIO_EXTS | (IMAGE_EXTS if decoding.spectrogram_images else frozenset())

    def accepts(self, modality: str) -> str:
        """E.g. `a CT slice: bmp, dcm, ...`: what to give for `modality`."""
        formats = ", ".join(sorted(e.lstrip(".") for e in self.extensions(modality)))
        return f"{SUBJECTS.get(modality, modality)}: {formats}"

    @torch.no_grad()
    def predict(self, rows: Sequence[Files]) -> np.ndarray:
        """(N, classes) probabilities; a modality with no file in a row is absent there."""
        inputs, present = self.decode(rows)
        return self.model(inputs, present).softmax(dim=1).numpy()

    def decode(self, rows: Sequence[Files]) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """The model's input tensors and presence masks for the rows' files, decoded as in
        training (what `predict` feeds the model; explanations start from the same tensors)."""
        for row in rows:
            self.check(row)
        inputs, present = {}, {}
        for m in self.modalities:
            mask = [bool(row.get(m)) for row in rows]
            if not any(mask):
                continue  # no tensor at all: absent for the whole batch
            arrays = [
                to_float_tensor(self.decoding.decode(m, row[m])) if has else None
                for row, has in zip(rows, mask, strict=True)
            ]
            blank = torch.zeros_like(next(a for a in arrays if a is not None))
            inputs[m] = torch.stack([blank if a is None else a for a in arrays])
            present[m] = torch.tensor(mask)
        if not self.trained_for_missing and not all(all(v) for v in present.values()):
            log.warning(
                "this model was trained with every modality (model.modality_dropout=0): "
                "predictions with a modality absent are less reliable"
            )
        return inputs, present

    def predict_many(self, rows: Sequence[Files], batch_size: int = 32) -> np.ndarray:
        chunks = [self.predict(rows[i : i + batch_size]) for i in range(0, len(rows), batch_size)]
        return np.concatenate(chunks) if chunks else np.zeros((0, len(self.class_names)))

    def as_frame(
        self, ids: Sequence[str], rows: Sequence[Files], probs: np.ndarray
    ) -> pd.DataFrame:
        frame = pd.DataFrame({"sample_id": list(ids)})
        frame["prediction"] = [self.class_names[i] for i in probs.argmax(axis=1)]
        for i, name in enumerate(self.class_names):
            frame[f"prob_{name}"] = probs[:, i]
        frame["missing"] = [";".join(m for m in self.modalities if not row.get(m)) for row in rows]
        for m in self.modalities:
            frame[f"file_{m}"] = [str(row.get(m) or "") for row in rows]
        return frame


def folder_rows(folder: Path, modalities: Sequence[str]) -> tuple[list[str], list[dict]]:
    """Pair files by stem across per-modality sub-folders (searched recursively)."""
    by_stem: dict[str, dict[str, Path]] = {}
    for m in modalities:
        sub = next(
            (folder / n for n in (m, KAGGLE_MODALITY_DIRS.get(m, m)) if (folder / n).is_dir()),
            None,
        )
        if sub is None:
            continue
        for path in sorted(p for p in sub.rglob("*") if p.suffix.lower() in DATA_EXTS):
            if m in by_stem.setdefault(path.stem, {}):
                raise DataError(
                    f"ambiguous pairing in {sub}: {by_stem[path.stem][m]} and {path} "
                    f"share the stem {path.stem!r}"
                )
            by_stem[path.stem][m] = path
    if not by_stem:
        raise DataError(
            f"no data files in {folder}: expected sub-folders named {', '.join(modalities)}"
        )
    ids = sorted(by_stem)
    return ids, [by_stem[i] for i in ids]


def manifest_rows(path: Path, modalities: Sequence[str]) -> tuple[list[str], list[dict]]:
    """A CSV with a column per modality (paths relative to the CSV; blank = absent)."""
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, ValueError) as err:
        raise DataError(f"cannot read manifest {path}: {err}") from None
    columns = [m for m in modalities if m in frame.columns]
    if not columns:
        raise DataError(f"manifest {path} has none of the columns {', '.join(modalities)}")
    rows = [
        {m: (path.parent / value).resolve() if value.strip() else None for m in columns
         for value in [record[m]]}
        for record in frame.to_dict("records")
    ]  # fmt: skip
    ids = (
        frame["sample_id"].tolist() if "sample_id" in frame else [str(i) for i in range(len(frame))]
    )
    return ids, rows
