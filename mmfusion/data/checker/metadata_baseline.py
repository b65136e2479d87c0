"""The metadata-only classifier: how well file properties alone predict the label.

A network that can tell the classes apart from the file format, image size, bit depth, file
size or audio sample rate may learn those instead of the disease. Fitting a classifier on such
properties only (never pixel or audio content) on the training split and scoring it on the
validation (and test) split gives the single clearest confound figure: its accuracy against
chance. Used by `python -m mmfusion.check` and by the real-data benchmarks (one implementation).

Usage, from a layout's samples (reads only file headers)::

    samples = {split: layout.samples(split, modalities) for split in ("train", "val", "test")}
    baseline = metadata_baseline(samples, modalities, layout.classes(modalities))
    print(baseline.summary())          # one line per scored split
    baseline.scores["val"].accuracy    # vs baseline.scores["val"].chance, with .ci and .p_value

or from per-file records that already hold the facts (`metadata_tables`, `fit_metadata_baseline`).

Model: sklearn's HistGradientBoostingClassifier with native categorical splits (thresholds on
numbers, subsets of categories: a value's order does not matter), fitted on train only.
Chance: the accuracy, on the scored split, of always predicting the training split's majority
class (what a classifier that ignores every feature achieves). Interval: Wilson 95% over the
split's samples; p-value: one-sided exact binomial test of accuracy > chance.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mmfusion.errors import DataError

IMAGE_FEATURES = ("format", "mode", "bit_depth", "width", "height", "bytes")
AUDIO_FEATURES = ("format", "codec", "sample_rate", "channels", "duration", "bytes")
FEATURES = {"image": IMAGE_FEATURES, "audio": AUDIO_FEATURES}
CATEGORICAL = frozenset({"format", "mode", "codec"})
AUDIO_SUFFIXES = frozenset({".wav", ".flac", ".ogg", ".mp3"})
# bits per channel of PIL's modes (PNG 16-bit grey opens as I;16 or I)
MODE_BITS = {"1": 1, "I;16": 16, "I;16B": 16, "I;16L": 16, "I;16N": 16, "I": 32, "F": 32}
CONFIDENCE = 0.95
SCORED_SPLITS = ("val", "test")


def _image_metadata(path: Path) -> dict[str, Any]:
    if path.suffix.lower() == ".dcm":
        import pydicom

        header = pydicom.dcmread(path, stop_before_pixels=True)
        return {
            "format": "DICOM",
            "mode": str(header.get("PhotometricInterpretation", "?")),
            "bit_depth": int(header.get("BitsStored", 0)),
            "width": int(header.get("Columns", 0)),
            "height": int(header.get("Rows", 0)),
        }
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:  # reads the header; pixels stay undecoded
            return {
                "format": image.format or path.suffix.lstrip(".").upper(),
                "mode": image.mode,
                "bit_depth": MODE_BITS.get(image.mode, 8),
                "width": image.width,
                "height": image.height,
            }
    except (UnidentifiedImageError, OSError, ValueError) as err:
        raise DataError(f"cannot read the image header of {path}: {err}") from err


def _audio_metadata(path: Path) -> dict[str, Any]:
    import soundfile as sf

    try:
        info = sf.info(str(path))
        return {
            "format": info.format,
            "codec": info.subtype,
            "sample_rate": int(info.samplerate),
            "channels": int(info.channels),
            "duration": float(info.frames / info.samplerate),
        }
    except (sf.LibsndfileError, RuntimeError):  # formats only audioread (ffmpeg) opens
        pass
    import audioread

    try:
        with audioread.audio_open(str(path)) as audio:
            return {
                "format": path.suffix.lstrip(".").upper(),
                "codec": path.suffix.lstrip(".").upper(),
                "sample_rate": int(audio.samplerate),
                "channels": int(audio.channels),
                "duration": float(audio.duration),
            }
    except (audioread.DecodeError, OSError) as err:
        raise DataError(f"cannot read the audio header of {path}: {err}") from err


def file_metadata(path: str | Path) -> dict[str, Any]:
    """The metadata features of one file (headers and size only, no content): `kind` ('image'
    or 'audio') and the features of `FEATURES[kind]`. Raises DataError when unreadable."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as err:
        raise DataError(f"cannot read {path}: {err.strerror or err}") from err
    if path.suffix.lower() in AUDIO_SUFFIXES:
        return {"kind": "audio", **_audio_metadata(path), "bytes": size}
    return {"kind": "image", **_image_metadata(path), "bytes": size}


def metadata_tables(
    records: Iterable[Mapping[str, Any]], splits: Sequence[str] = ("train", "val", "test")
) -> dict[str, pd.DataFrame]:
    """{split: one row per sample} from per-file records.

    Each record holds `split`, `sample_id`, `label` (class name), `modality`, `kind` and the
    features of `FEATURES[kind]` (as `file_metadata` returns them). Columns are
    `<modality>.<feature>` plus `label`; a sample lacking a file has NaN there.
    """
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for record in records:
        row = rows.setdefault(
            (record["split"], record["sample_id"]), {"label": str(record["label"])}
        )
        if row["label"] != str(record["label"]):
            raise DataError(
                f"sample {record['sample_id']} ({record['split']}) has files under two labels: "
                f"{row['label']} and {record['label']}"
            )
        for feature in FEATURES[record["kind"]]:
            row[f"{record['modality']}.{feature}"] = record[feature]
    tables = {}
    for split in splits:
        chosen = {sid: row for (s, sid), row in rows.items() if s == split}
        tables[split] = pd.DataFrame.from_dict(chosen, orient="index").sort_index()
    return tables


def metadata_records(
    samples_by_split: Mapping[str, Sequence[Any]],
    modalities: Sequence[str],
    class_names: Sequence[str],
) -> list[dict[str, Any]]:
    """Per-file records (see `metadata_tables`) of layout samples (`.sample_id`, `.label`,
    `.files`), reading each file's metadata once."""
    records = []
    for split, samples in samples_by_split.items():
        for sample in samples:
            for modality in modalities:
                records.append(
                    {
                        "split": split,
                        "sample_id": sample.sample_id,
                        "label": class_names[sample.label],
                        "modality": modality,
                        **file_metadata(sample.files[modality]),
                    }
                )
    return records


@dataclass(frozen=True)
class SplitScore:
    """The baseline on one held-out split."""

    split: str
    n: int
    accuracy: float
    ci: tuple[float, float]  # Wilson 95% over the split's samples
    chance: float  # accuracy of predicting the training majority class on this split
    p_value: float  # one-sided exact binomial test: accuracy > chance

    @property
    def above_chance(self) -> bool:
        """The interval lies above chance: file properties carry label information."""
        return self.ci[0] > self.chance


@dataclass(frozen=True)
class MetadataBaseline:
    """Train-fitted metadata-only classifier, scored on the held-out splits."""

    model: str
    features: tuple[str, ...]  # the columns it was fitted on (those varying on train)
    n_train: int
    majority_class: str
    scores: dict[str, SplitScore]
    # drop of validation accuracy when a feature is permuted (sklearn permutation_importance)
    importance: dict[str, float] = field(default_factory=dict)

    def summary(self) -> list[str]:
        """One line per scored split, saying what it was measured on."""
        lines = []
        top = [f"{name} {drop:+.2f}" for name, drop in self.importance.items() if drop > 0][:3]
        for score in self.scores.values():
            driven = f"; val accuracy drop when permuted: {', '.join(top)}"
            lines.append(
                f"metadata-only classifier ({self.model}, trained on {self.n_train} train "
                f"samples, features {', '.join(self.features) or 'none varying'}): "
                f"{score.split} accuracy {score.accuracy:.3f} "
                f"[95% CI {score.ci[0]:.3f}, {score.ci[1]:.3f}] on {score.n} samples vs chance "
                f"{score.chance:.3f} (majority class {self.majority_class!r}), "
                f"p={score.p_value:.2g}" + (driven if top and score.split == "val" else "")
            )
        return lines

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "features": list(self.features),
            "n_train": self.n_train,
            "majority_class": self.majority_class,
            "scores": {
                name: {
                    "n": s.n,
                    "accuracy": s.accuracy,
                    "ci": list(s.ci),
                    "chance": s.chance,
                    "p_value": s.p_value,
                    "above_chance": s.above_chance,
                }
                for name, s in self.scores.items()
            },
            "importance": self.importance,
        }


def _encode(
    table: pd.DataFrame, columns: Sequence[str], categories: Mapping[str, list[str]]
) -> np.ndarray:
    """Numbers as floats, categories as their index among train's (unseen: NaN = missing)."""
    encoded = []
    for column in columns:
        values = table[column] if column in table else pd.Series(np.nan, index=table.index)
        if column in categories:
            lookup = {value: i for i, value in enumerate(categories[column])}
            codes = [lookup.get(str(v), np.nan) for v in values]
            encoded.append(np.asarray(codes, dtype=float))
        else:
            encoded.append(pd.to_numeric(values, errors="coerce").to_numpy(float))
    return np.column_stack(encoded) if encoded else np.zeros((len(table), 0))


def _score(split: str, labels: np.ndarray, preds: np.ndarray, majority: str) -> SplitScore:
    from scipy.stats import binomtest
    from statsmodels.stats.proportion import proportion_confint

    n = len(labels)
    hits = int((preds == labels).sum())
    chance = float((labels == majority).mean())
    low, high = proportion_confint(hits, n, alpha=1 - CONFIDENCE, method="wilson")
    p = binomtest(hits, n, chance, alternative="greater").pvalue if 0 < chance < 1 else 1.0
    return SplitScore(split, n, hits / n, (float(low), float(high)), chance, float(p))


def fit_metadata_baseline(tables: Mapping[str, pd.DataFrame], seed: int = 0) -> MetadataBaseline:
    """Fit on `tables['train']`, score on `val` and `test` (those present and non-empty).

    Each table: one row per sample, a `label` column (class name) and feature columns
    (`metadata_tables` builds them); features constant on train are left out.
    """
    from threadpoolctl import threadpool_limits

    # a few thousand rows: one thread is fastest (OpenMP threads on a busy machine take 20x)
    with threadpool_limits(1):
        return _fit(tables, seed)


def _fit(tables: Mapping[str, pd.DataFrame], seed: int) -> MetadataBaseline:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.inspection import permutation_importance

    train = tables.get("train")
    if train is None or train.empty:
        raise DataError("metadata-only classifier: the train split has no samples")
    labels = train["label"].astype(str).to_numpy()
    majority = pd.Series(labels).value_counts().sort_index().idxmax()
    features = [
        c for c in sorted(train.columns) if c != "label" and train[c].nunique(dropna=False) > 1
    ]
    categories = {
        c: sorted(train[c].dropna().astype(str).unique())
        for c in features
        if c.rsplit(".", 1)[-1] in CATEGORICAL
    }
    model = HistGradientBoostingClassifier(
        categorical_features=[c in categories for c in features] or None,
        min_samples_leaf=int(np.clip(len(train) // 20, 2, 20)),  # tiny splits can still split
        random_state=seed,
    )
    if features and len(set(labels)) > 1:
        model.fit(_encode(train, features, categories), labels)

        def predict(table: pd.DataFrame) -> np.ndarray:
            return model.predict(_encode(table, features, categories))
    else:

        def predict(table: pd.DataFrame) -> np.ndarray:
            return np.full(len(table), majority)

    scores, importance = {}, {}
    for split in SCORED_SPLITS:
        table = tables.get(split)
        if table is None or table.empty:
            continue
        truth = table["label"].astype(str).to_numpy()
        scores[split] = _score(split, truth, predict(table), majority)
        if split == "val" and features and len(set(labels)) > 1:
            drops = permutation_importance(
                model,
                _encode(table, features, categories),
                truth,
                n_repeats=5,
                random_state=seed,
            ).importances_mean
            importance = {
                name: round(float(d), 3)
                for name, d in sorted(zip(features, drops, strict=True), key=lambda x: -x[1])
            }
    return MetadataBaseline(
        "HistGradientBoostingClassifier",
        tuple(features),
        len(train),
        str(majority),
        scores,
        importance,
    )


def metadata_baseline(
    samples_by_split: Mapping[str, Sequence[Any]],
    modalities: Sequence[str],
    class_names: Sequence[str],
    seed: int = 0,
) -> MetadataBaseline:
    """The metadata-only classifier of a layout's samples: {split: [Sample]} with `train` and
    `val` (and `test`), the modalities whose files to describe, and the class names that
    `Sample.label` indexes. Reads file headers only; an unreadable file raises DataError."""
    records = metadata_records(samples_by_split, modalities, class_names)
    return fit_metadata_baseline(metadata_tables(records, list(samples_by_split)), seed)
