"""Embedding cache: when every encoder a fusion uses stays frozen, each split's embeddings are
computed once, written to disk, memory-mapped back, and fusion + head are trained on them.

A cached array is keyed by the encoder's weights (a digest of its state dict), the modality's
decoding spec (parameters and normalisation), the files (path, size, mtime: the decoded-array
cache key) and whether tokens or pooled features are read; a change to any of them writes a new
array. Training on embeddings sees no input augmentation (the inputs are never decoded again);
modality dropout still applies. Early fusion fuses the inputs, so no encoder sees a modality
alone and there is nothing to cache: its runs say so (`embedding_cache` tag).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
from filelock import FileLock
from torch.utils.data import DataLoader, Dataset

from mmfusion.data.cache import cache_key
from mmfusion.data.datamodule import MultimodalDataModule, MultimodalDataset
from mmfusion.data.loading import batch_loader, split_loader
from mmfusion.models.classifier import FusionClassifier
from mmfusion.models.encoders.base import Encoder
from mmfusion.models.networks import MultimodalNet
from mmfusion.tracking.loggers import set_tags

log = logging.getLogger(__name__)
FIT_SPLITS = ("train", "val")
#: the MLflow tag that says whether a run trained on cached embeddings, and if not, why
TAG = "embedding_cache"


def weights_digest(module: torch.nn.Module) -> str:
    """SHA-1 of a module's state dict (names, dtypes, shapes, values)."""
    digest = hashlib.sha1()
    for name, tensor in sorted(module.state_dict().items()):
        data = tensor.detach().cpu().contiguous().reshape(-1)
        digest.update(f"{name}|{data.dtype}|{tuple(data.shape)}\n".encode())
        digest.update(data.view(torch.uint8).numpy().tobytes() if data.numel() else b"")
    return digest.hexdigest()


def why_not_cached(net: MultimodalNet, unfreezes: bool) -> str | None:
    """None when fit can read cached embeddings, else the reason (for the run's tag)."""
    if net.no_embedding_cache:
        return net.no_embedding_cache
    thawed = [m for m in net.modalities if not net.encoder_for(m).freeze]
    if thawed:
        return f"encoders trained: {', '.join(thawed)} (freeze them: training.freeze_encoders)"
    if unfreezes:
        return "the encoders are unfrozen later (training.unfreeze_at_epoch)"
    return None


def embedding_key(
    encoder: Encoder,
    tokens: bool,
    dataset: MultimodalDataset,
    decoding: dict,
    modality: str,
    files_key: str,
) -> str:
    digest = hashlib.sha1()
    params = [weights_digest(encoder), tokens, decoding, files_key, len(dataset)]
    digest.update(json.dumps(params, sort_keys=True, default=str).encode())
    return digest.hexdigest()[:20]


@torch.no_grad()
def embed(
    model: FusionClassifier, modality: str, dataset: MultimodalDataset, batch_size: int
) -> np.ndarray:
    """The encoder's output for every row of `dataset`, in order (eval mode, normalised input)."""
    model.eval()
    chunks = []
    for inputs, _ in batch_loader(dataset, batch_size):
        x = model.normalise({modality: inputs[modality].to(model.device)})[modality]
        chunks.append(model.net.encode(modality, x).float().cpu().numpy())
    return np.concatenate(chunks)


def cached_embeddings(
    model: FusionClassifier,
    datamodule: MultimodalDataModule,
    split: str,
    cache_dir: Path,
) -> tuple[dict[str, np.ndarray], float]:
    """{modality: memory-mapped (N, ...) embeddings} of a split, and seconds spent building."""
    folder = cache_dir / "embeddings"
    folder.mkdir(parents=True, exist_ok=True)
    dataset = datamodule.datasets[split]
    spec = datamodule.decoding.to_dict()
    arrays, built = {}, 0.0
    for modality in datamodule.modalities:
        files = [s.files[modality] for s in dataset.samples]
        files_key = cache_key(files, datamodule.decoding, modality)
        encoder = model.net.encoder_for(modality)
        tokens = bool(getattr(model.net, "tokens", False))
        key = embedding_key(encoder, tokens, dataset, spec[modality], modality, files_key)
        path = folder / f"{modality}-{key}.npy"
        with FileLock(str(folder / f"{modality}-{key}.lock")):
            if not path.exists():
                start = time.perf_counter()
                array = embed(model, modality, dataset, datamodule.batch_size)
                tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
                with open(tmp, "wb") as handle:
                    np.save(handle, array)
                os.replace(tmp, path)
                built += time.perf_counter() - start
                log.info(
                    "embedding cache: %s %s %s written (%d rows)", split, modality, path, len(array)
                )
        arrays[modality] = np.load(path, mmap_mode="r")
    return arrays, built


class EmbeddingDataset(Dataset):
    """Cached embeddings per modality with the split's labels; whole-batch reads."""

    def __init__(self, arrays: dict[str, np.ndarray], labels: torch.Tensor) -> None:
        self.arrays = arrays
        self.labels = labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitems__(self, indices: list[int]) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        rows = np.asarray(indices)
        inputs = {
            m: torch.from_numpy(np.array(a[rows], dtype=np.float32)) for m, a in self.arrays.items()
        }
        return inputs, self.labels[rows]


class EmbeddingDataModule(pl.LightningDataModule):
    """Train and val as cached embeddings; test (and everything that reads files after fit:
    evaluation, explanations, the logged model's example) stays the files' datamodule's."""

    def __init__(
        self, files: MultimodalDataModule, model: FusionClassifier, cache_dir: Path
    ) -> None:
        super().__init__()
        self.files = files
        self.modalities = files.modalities
        self.batch_size = files.batch_size
        self.build_seconds = 0.0
        self.datasets: dict[str, Dataset] = {}
        for split in FIT_SPLITS:
            arrays, seconds = cached_embeddings(model, files, split, cache_dir)
            self.build_seconds += seconds
            self.datasets[split] = EmbeddingDataset(arrays, files.datasets[split].labels)
        self.datasets["test"] = files.datasets["test"]

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        return split_loader(self.datasets[split], self.batch_size, shuffle)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self.files.test_dataloader()


def fit_datamodule(
    training: Any,
    cache_dir: str | Path,
    model: FusionClassifier,
    datamodule: MultimodalDataModule,
    loggers: list,
) -> pl.LightningDataModule:
    """The cached embeddings' datamodule when every encoder stays frozen for the whole fit (the
    run's `embedding_cache` tag says so, with the build time), else `datamodule` (the tag says
    why not)."""
    unfreezes = training.unfreeze_at_epoch is not None
    reason = why_not_cached(model.net, unfreezes) if training.embedding_cache else "switched off"
    if reason is not None:
        if training.freeze_encoders:  # asked for frozen encoders, still trains on the files
            log.warning("embedding cache not used: %s", reason)
        set_tags(loggers, {TAG: f"not used: {reason}"})
        return datamodule
    fit_data = EmbeddingDataModule(datamodule, model, Path(cache_dir))
    model.embedded_inputs = True
    log.info("fusion + head train on cached embeddings (built in %.1f s)", fit_data.build_seconds)
    set_tags(loggers, {TAG: "used", f"{TAG}.build_s": f"{fit_data.build_seconds:.1f}"})
    return fit_data
