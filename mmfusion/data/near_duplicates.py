"""Near-duplicate images and what a run does about them: `data.near_duplicates`.

Two images of one modality are near-duplicates when their 256-bit perceptual hashes (pHash of
the image decoded at 64 px) differ in at most `data.near_duplicate_distance` bits (default 10):
re-encoded, resized or recompressed copies measure <= 8, neighbouring CT slices of one patient
often <= 4, distinct chest images >= 12 (crops are not caught). Clusters are the connected
components of the near-duplicate pairs, joined with the samples of one patient
(`data.patient_key`) so that moving a cluster never splits a patient.

- `report` (default): splits as the layout made them; `python -m mmfusion.check` lists the pairs
  that cross splits.
- `group`: each cluster goes, whole, to the split of its anchor (its smallest sample id) and
  becomes one patient for k-fold; the anchor is the same in every fold of a manifest, so every
  cluster is tested exactly once over the folds.
- `drop`: only each cluster's anchor is kept.

The counts are logged. Hashes are cached per file (path, size, mtime) under the cache folder.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
from filelock import FileLock

from mmfusion.data.decoding.files import CTWindow, read_image
from mmfusion.data.layouts.folders import AUDIO_EXTS, Sample, patient_of
from mmfusion.data.layouts.splitting import SPLITS
from mmfusion.data.leakage import stat_key
from mmfusion.errors import ConfigError, DataError

log = logging.getLogger(__name__)
POLICIES = ("report", "group", "drop")
DEFAULT_DISTANCE = 10
PHASH_SIZE = 64  # decoded side length the perceptual hash is computed from
# 16 x 16 = 256-bit pHash: re-encoded or resized copies stay within ~8 bits, while distinct chest
# images (which all look alike to a 64-bit hash: 2 bits apart at worst) stay 12+ bits apart
PHASH_BITS_SIDE = 16


def image_phash(path: Path, window: CTWindow | None = None) -> str:
    """The 256-bit perceptual hash of an image as decoded for training (hex); DataError if
    unreadable."""
    import imagehash
    from PIL import Image

    decoded = read_image(Path(path), PHASH_SIZE, window)
    return str(imagehash.phash(Image.fromarray(decoded), hash_size=PHASH_BITS_SIDE))


def cached_phashes(
    paths: Iterable[Path], window: CTWindow | None, cache_dir: Path | None
) -> dict[Path, str]:
    """{path: pHash} of the images, from `<cache_dir>/phash.json` where the file is unchanged."""
    paths = list(dict.fromkeys(paths))
    cache_file = Path(cache_dir) / "phash.json" if cache_dir else None
    salt = json.dumps((window or CTWindow()).params(), sort_keys=True)
    cached: dict[str, str] = {}
    if cache_file and cache_file.is_file():
        try:
            cached = json.loads(cache_file.read_text())
        except (OSError, ValueError):
            cached = {}
    hashes, fresh = {}, {}
    for path in paths:
        key = f"{stat_key(path)}|{salt}"
        if key not in cached:
            fresh[key] = image_phash(path, window)
        hashes[path] = cached.get(key) or fresh[key]
    if cache_file and fresh:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(cache_file) + ".lock"):
            current = json.loads(cache_file.read_text()) if cache_file.is_file() else {}
            tmp = cache_file.with_name(f".{cache_file.name}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps(current | fresh))
            os.replace(tmp, cache_file)
    return hashes


def near_pairs(hashes: Sequence[str], distance: int) -> list[tuple[int, int, int]]:
    """(i, j, bits) of every pair of hashes at most `distance` bits apart, i < j."""
    if len(hashes) < 2:
        return []
    bits = np.stack([np.frombuffer(bytes.fromhex(h), np.uint64) for h in hashes])
    pairs = []
    for i in range(len(hashes) - 1):
        apart = np.bitwise_count(bits[i] ^ bits[i + 1 :]).sum(axis=1)
        pairs += [(i, i + 1 + int(j), int(apart[j])) for j in np.flatnonzero(apart <= distance)]
    return pairs


def clusters(size: int, links: Iterable[tuple[int, int]]) -> np.ndarray:
    """Component id of each of `size` items joined by `links` (connected components)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    links = list(links)
    rows = [a for a, _ in links]
    cols = [b for _, b in links]
    graph = coo_matrix((np.ones(len(links)), (rows, cols)), shape=(size, size))
    return connected_components(graph, directed=False)[1]


class NearDuplicateLayout:
    """Wraps a layout: applies `policy` (see the module docstring) to its train / val / test."""

    def __init__(
        self,
        layout,
        policy: str = "report",
        distance: int = DEFAULT_DISTANCE,
        window: CTWindow | None = None,
        cache_dir: str | Path | None = None,
    ) -> None:
        if policy not in POLICIES:
            raise ConfigError(f"data.near_duplicates={policy!r}: use one of {list(POLICIES)}")
        if not isinstance(distance, int) or distance < 0:
            raise ConfigError(f"data.near_duplicate_distance={distance!r}: use an integer >= 0")
        self.layout = layout
        self.policy = policy
        self.distance = distance
        self.window = window
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self.counts: dict[str, int] = {}
        self._resolved: dict[tuple[str, ...], dict[str, list[Sample]]] = {}

    def __getattr__(self, name: str):
        return getattr(self.layout, name)

    def prepare(self) -> None:
        self.layout.prepare()

    def classes(self, modalities: Sequence[str]) -> list[str]:
        return self.layout.classes(modalities)

    def samples(self, split: str, modalities: Sequence[str]) -> list[Sample]:
        if self.policy == "report":
            return self.layout.samples(split, modalities)
        key = tuple(modalities)
        if key not in self._resolved:
            self._resolved[key] = self._apply(
                {s: self.layout.samples(s, modalities) for s in SPLITS}
            )
        samples = self._resolved[key][split]
        if not samples:
            raise DataError(f"data.near_duplicates={self.policy} left no samples in {split!r}")
        return samples

    def _apply(self, by_split: dict[str, list[Sample]]) -> dict[str, list[Sample]]:
        pool = [(split, s) for split in SPLITS for s in by_split[split]]
        # drop keeps patients where they are: it only thins out near-duplicates
        component = self._components([s for _, s in pool], with_patients=self.policy == "group")
        members: dict[int, list[int]] = {}
        for index, c in enumerate(component):
            members.setdefault(int(c), []).append(index)
        result: dict[str, list[Sample]] = {split: [] for split in SPLITS}
        moved = dropped = 0
        for indices in members.values():
            anchor = min(indices, key=lambda i: pool[i][1].sample_id)
            split_of_anchor, anchor_sample = pool[anchor]
            for i in indices:
                split, sample = pool[i]
                if self.policy == "drop" and i != anchor:
                    dropped += 1
                    continue
                if len(indices) > 1:  # the cluster is one unit for k-fold, too
                    sample = replace(sample, patient=patient_of(anchor_sample))
                moved += split != split_of_anchor
                result[split_of_anchor].append(sample)
        grouped = sum(len(indices) > 1 for indices in members.values())
        self.counts = {"clusters": grouped, "moved": moved, "dropped": dropped}
        log.warning(
            "data.near_duplicates=%s (pHash distance <= %d): %d clusters of near-duplicate%s "
            "samples; %s",
            self.policy,
            self.distance,
            grouped,
            " or same-patient" if self.policy == "group" else "",
            f"{moved} samples moved to their cluster's split"
            if self.policy == "group"
            else f"{dropped} samples dropped, one kept per cluster",
        )
        return result

    def _components(self, samples: list[Sample], with_patients: bool) -> np.ndarray:
        """Cluster of each sample: near-duplicate images of one modality (and one patient)."""
        links: list[tuple[int, int]] = []
        for modality in samples[0].files if samples else []:
            images = [
                i
                for i, s in enumerate(samples)
                if s.files[modality].suffix.lower() not in AUDIO_EXTS
            ]
            hashes = cached_phashes(
                [samples[i].files[modality] for i in images], self.window, self.cache_dir
            )
            found = near_pairs([hashes[samples[i].files[modality]] for i in images], self.distance)
            links += [(images[a], images[b]) for a, b, _ in found]
            log.info("%s: %d near-duplicate image pairs", modality, len(found))
        first: dict[str, int] = {}
        for i, sample in enumerate(samples):
            if with_patients and sample.patient is not None:
                links.append((first.setdefault(sample.patient, i), i))
        return clusters(len(samples), links)
