"""DataLoader settings that fit the machine, and whole-batch reads from the decoded cache.

Measured on the default data (2-core CPU, `benchmarks/throughput.py`): reading a batch with one
fancy-index per modality array (`__getitems__`) serves ~2x more samples/s than per-item
`__getitem__` + collate, and worker processes *lower* throughput there (the batch is a memcpy
from a memory-mapped array; a worker adds pickling and IPC and competes with the model for the
same cores). Workers pay off only where there are cores to spare, to overlap batch assembly and
pinning with accelerator compute; `auto` keeps them at 0 on small machines.
"""

from __future__ import annotations

import os

import torch

from mmfusion.errors import ConfigError


def available_cpus() -> int:
    """CPUs this process may run on (cgroup / taskset aware where the OS says so)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def auto_workers(cpus: int | None = None) -> int:
    """0 up to 4 CPUs (the main process is fastest there), then a quarter of them, at most 8."""
    cpus = available_cpus() if cpus is None else cpus
    return 0 if cpus <= 4 else min(8, cpus // 4)


def resolve_workers(num_workers: int | str) -> int:
    if num_workers == "auto":
        return auto_workers()
    if isinstance(num_workers, int) and not isinstance(num_workers, bool) and num_workers >= 0:
        return num_workers
    raise ConfigError(f"data.num_workers={num_workers!r}: use auto or an integer >= 0")


def loader_options(num_workers: int | str, prefetch_factor: int = 4) -> dict:
    """Keyword arguments for DataLoader: workers, persistence, prefetch, pinning on CUDA."""
    workers = resolve_workers(num_workers)
    options = {
        "num_workers": workers,
        "persistent_workers": workers > 0,
        "pin_memory": torch.cuda.is_available(),
    }
    if workers > 0:
        options["prefetch_factor"] = prefetch_factor
    return options


def collate_batch(batch):
    """The dataset's `__getitems__` already returns a whole batch: pass it through."""
    return batch


def batch_loader(dataset, batch_size: int) -> torch.utils.data.DataLoader:
    """An unshuffled loader over a MultimodalDataset (whole-batch reads, rows in sample order)."""
    return torch.utils.data.DataLoader(dataset, batch_size=batch_size, collate_fn=collate_batch)


def split_loader(
    dataset, batch_size: int, shuffle: bool, num_workers: int | str = 0
) -> torch.utils.data.DataLoader:
    """A split's loader (whole-batch reads); shuffled for training, where a last batch of one
    sample is dropped: it breaks batch norm (one value per channel)."""
    lone = shuffle and len(dataset) > batch_size and len(dataset) % batch_size == 1
    return torch.utils.data.DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        drop_last=lone,
        collate_fn=collate_batch,
        **loader_options(num_workers),
    )
