"""One LightningDataModule for every layout: scan, pair, decode once, serve in-memory tensors."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from mmfusion.data.blank import report_blank
from mmfusion.data.cache import decoded_split
from mmfusion.data.decoding.spec import DecodingSpec
from mmfusion.data.description import SplitDescription, describe_split
from mmfusion.data.layouts.folders import Sample, SplitFolderLayout
from mmfusion.data.leakage import refuse_leakage
from mmfusion.data.loading import split_loader
from mmfusion.data.near_duplicates import DEFAULT_DISTANCE
from mmfusion.data.splits import run_layout
from mmfusion.errors import ConfigError, DataError

log = logging.getLogger(__name__)
SPLITS = ("train", "val", "test")
BAD_FILE_POLICIES = ("raise", "skip")


class MultimodalDataset(Dataset):
    """Pre-decoded arrays per modality; items are ({modality: (1, H, W) float}, label)."""

    def __init__(self, arrays: dict[str, np.ndarray], samples: Sequence[Sample]) -> None:
        self.arrays = arrays
        self.samples = list(samples)
        self.labels = torch.tensor([s.label for s in self.samples])

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        inputs = {m: to_float_tensor(array[index]) for m, array in self.arrays.items()}
        return inputs, self.labels[index]

    def __getitems__(self, indices: list[int]) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """A whole batch in one read per modality (DataLoader calls this when it exists)."""
        rows = np.asarray(indices)
        inputs = {
            m: to_float_tensor(array[rows], channel_dim=1) for m, array in self.arrays.items()
        }
        return inputs, self.labels[rows]


def to_float_tensor(array: np.ndarray, channel_dim: int = 0) -> torch.Tensor:
    tensor = torch.from_numpy(np.array(array, dtype=np.float32))
    if array.dtype == np.uint8:
        tensor /= 255.0
    return tensor.unsqueeze(channel_dim)


class MultimodalDataModule(pl.LightningDataModule):
    """Train / val / test of any layout, for any subset of the modalities."""

    def __init__(
        self,
        layout: SplitFolderLayout,
        modalities: Sequence[str],
        decoding: DecodingSpec,
        batch_size: int = 32,
        num_workers: int | str = "auto",
        decode_workers: int = 2,
        cache_dir: str | Path = ".cache/mmfusion",
        on_bad_file: str = "raise",
        root: str | None = None,
        manifest: str | None = None,  # like root: a user-facing option the layout reads
        allow_leakage: bool = False,
        folds: int | None = None,
        fold: int | None = None,
        healthy_class: str | None = None,
        patient_key: str | None = None,  # like root: the layout reads it
        near_duplicates: str = "report",
        near_duplicate_distance: int = DEFAULT_DISTANCE,
        min_per_class: Mapping[str, int] | None = None,
    ) -> None:
        """`min_per_class`: the fewest patients of each class a split may hold once bad files
        are skipped ({split: count}, default 1 each)."""
        super().__init__()
        if on_bad_file not in BAD_FILE_POLICIES:
            raise ConfigError(f"data.on_bad_file={on_bad_file!r}: use one of {BAD_FILE_POLICIES}")
        if not modalities:
            raise ConfigError("modality.names is empty: name at least one modality")
        if hasattr(layout, "on_bad_file"):  # one policy: unreadable folders follow it too
            layout.on_bad_file = on_bad_file
        self.modalities = list(modalities)
        # fitted on the training split in `setup`: then it is what the checkpoint saves
        self.decoding = decoding.only(self.modalities)
        window = self.decoding["ct"].window if "ct" in self.modalities else None
        # near-duplicates grouped / dropped (data.near_duplicates), then k-fold CV
        # (data.folds=K data.fold=i): train + valid re-split, test untouched
        self.layout = run_layout(
            layout, near_duplicates, near_duplicate_distance, window, cache_dir, folds, fold
        )
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.decode_workers = decode_workers
        self.cache_dir = Path(cache_dir)
        self.on_bad_file = on_bad_file
        self.allow_leakage = allow_leakage
        # the class without a finding: explanations contrast the predicted class against it
        self.healthy_class = healthy_class
        self.min_per_class = {split: 1 for split in SPLITS} | dict(min_per_class or {})
        self.datasets: dict[str, MultimodalDataset] = {}
        self.skipped: dict[str, str] = {}
        self.class_names: list[str] = []

    def prepare_data(self) -> None:
        self.layout.prepare()

    def classes(self) -> list[str]:
        """The class names (known before `setup`, so a network can be built first)."""
        if not self.class_names:
            self.class_names = self.layout.classes(self.modalities)
        return self.class_names

    def for_encoders(self, inputs: dict[str, dict | None]) -> None:
        """Decode and normalise each modality as its encoder needs (`DecodingSpec.for_encoders`):
        called before `setup`; a normalisation fixed here is not re-fitted on train."""
        if self.datasets:
            raise ConfigError("the encoders' decoding must be set before the data are decoded")
        self.decoding = self.decoding.for_encoders(inputs)

    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
        self.classes()
        if self.healthy_class is not None and self.healthy_class not in self.class_names:
            raise ConfigError(
                f"data.healthy_class={self.healthy_class!r} is not one of the classes "
                f"{self.class_names} (set it to one of them, or null)"
            )
        samples = {split: self.layout.samples(split, self.modalities) for split in SPLITS}
        refuse_leakage(samples, self.allow_leakage, self.cache_dir)  # before any decoding
        for split in SPLITS:
            self.datasets[split] = self._load(split, samples[split])
        self.decoding = self.decoding.fitted(self._train_statistics())
        self.skipped.update(getattr(self.layout, "bad_files", {}))  # unreadable folders
        self._refuse_thin_classes()
        counts = {s: len(d) for s, d in self.datasets.items()}
        log.info("data: %s, classes %s, modalities %s", counts, self.class_names, self.modalities)

    def _load(self, split: str, samples: list[Sample]) -> MultimodalDataset:
        arrays, bad_files = decoded_split(
            samples, self.decoding, self.cache_dir, self.decode_workers
        )
        if bad_files and self.on_bad_file == "raise":
            _path, reason = next(iter(bad_files.items()))
            more = f" (and {len(bad_files) - 1} more)" if len(bad_files) > 1 else ""
            raise DataError(f"{reason}{more}; data.on_bad_file=skip drops such patients")
        if bad_files:
            bad = {str(p) for p in bad_files}
            keep = [
                i for i, s in enumerate(samples) if not any(str(f) in bad for f in s.files.values())
            ]
            log.warning(
                "%s split: skipped %d unreadable files, dropping %d patients "
                "(listed in bad_files.json)",
                split,
                len(bad_files),
                len(samples) - len(keep),
            )
            self.skipped.update(bad_files)
            samples = [samples[i] for i in keep]
            arrays = {m: a[keep] for m, a in arrays.items()}
        if not samples:
            example = f" (skipped {len(bad_files)} files, e.g. {next(iter(bad_files.values()))})"
            raise DataError(
                f"no readable samples left in split {split!r}{example if bad_files else ''}"
            )
        report_blank(split, samples, arrays)
        return MultimodalDataset(arrays, samples)

    def class_counts(self) -> dict[str, dict[str, int]]:
        """{split: {class name: patients}}."""
        return {
            split: {
                name: int((dataset.labels == i).sum()) for i, name in enumerate(self.class_names)
            }
            for split, dataset in self.datasets.items()
        }

    def _refuse_thin_classes(self) -> None:
        """A class missing from a split makes its metrics undefined (AUROC, recall): stop with
        the counts instead of logging numbers that mean nothing."""
        counts = self.class_counts()
        thin = [
            f"{split} has {n} {name!r}"
            for split, per_class in counts.items()
            for name, n in per_class.items()
            if n < self.min_per_class.get(split, 1)
        ]
        if thin:
            skipped = f" after skipping {len(self.skipped)} bad files" if self.skipped else ""
            table = "; ".join(
                f"{split} " + ", ".join(f"{n} {name}" for name, n in per_class.items())
                for split, per_class in counts.items()
            )
            minimum = ", ".join(f"{s} {n}" for s, n in self.min_per_class.items())
            raise DataError(
                f"too few patients of a class{skipped}: {', '.join(thin)} (counts: {table}; "
                f"data.min_per_class: {minimum})"
            )

    def describe(self) -> list[SplitDescription]:
        """Each loaded split's name, content digest, source and class counts (for tracking)."""
        source = Path(getattr(self.layout, "path", None) or self.layout.root)
        return [
            describe_split(
                split, dataset.samples, self.modalities, self.class_names, source, self.cache_dir
            )
            for split, dataset in self.datasets.items()
        ]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def _train_statistics(self) -> dict[str, tuple[float, float]]:
        """Mean and std per modality, from the training split only (no test leakage)."""
        stats = {}
        for modality, array in self.datasets["train"].arrays.items():
            data = np.asarray(array, dtype=np.float32)
            data = data / 255.0 if array.dtype == np.uint8 else data
            stats[modality] = (float(data.mean()), float(data.std()) or 1.0)
        return stats

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        return split_loader(self.datasets[split], self.batch_size, shuffle, self.num_workers)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)
