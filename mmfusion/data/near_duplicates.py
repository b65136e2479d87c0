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
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from mmfusion.data.decoding.images import read_image
from mmfusion.data.decoding.window import CTWindow
from mmfusion.data.layouts.folders import AUDIO_EXTS, Sample
from mmfusion.data.layouts.splitting import SPLITS
from mmfusion.data.layouts.wrapper import LayoutWrapper
from mmfusion.data.leakage import add_to_json_cache, read_json_cache, stat_key
from mmfusion.errors import ConfigError, DataError, MmfusionError

log = logging.getLogger(__name__)
POLICIES = ("report", "group", "drop")
IMAGE_MODALITIES = ("ct", "cxr")  # audio has no perceptual hash
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
    cached = read_json_cache(cache_file)
    hashes, fresh = {}, {}
    for path in paths:
        key = f"{stat_key(path)}|{salt}"
        if key not in cached:
            fresh[key] = image_phash(path, window)
        hashes[path] = cached.get(key) or fresh[key]
    if cache_file and fresh:
        add_to_json_cache(cache_file, fresh)
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


class NearDuplicateLayout(LayoutWrapper):
    """Wraps a layout: applies `policy` (see the module docstring) to its train / val / test.

    Clusters are found once over every image modality the layout has (each modality read on its
    own), so a patient lands in the same split whichever modalities a run uses; a layout whose
    sample ids depend on the modalities (pseudo-patients) is clustered per run instead.
    """

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
        super().__init__(layout)
        self.policy = policy
        self.distance = distance
        self.window = window
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self.counts: dict[str, int] = {}
        self._resolved: dict[tuple[str, ...], dict[str, list[Sample]]] = {}
        self._clusters: tuple[dict[str, str], dict[str, str]] | None = None

    def samples(self, split: str, modalities: Sequence[str]) -> list[Sample]:
        if self.policy == "report":
            return self.layout.samples(split, modalities)
        key = tuple(modalities)
        if key not in self._resolved:
            split_of, anchor_of = self._scan()
            by_split = {s: self.layout.samples(s, modalities) for s in SPLITS}
            pool = [(s, x) for s in SPLITS for x in by_split[s]]
            if any(x.sample_id not in split_of for _, x in pool):  # ids depend on modalities
                split_of, anchor_of = self._cluster(pool, [(m, x) for m in key for _, x in pool])
            self._resolved[key] = self._apply(pool, split_of, anchor_of)
        samples = self._resolved[key][split]
        if not samples:
            raise DataError(f"data.near_duplicates={self.policy} left no samples in {split!r}")
        return samples

    def _scan(self) -> tuple[dict[str, str], dict[str, str]]:
        """({sample id: split}, {sample id: its cluster's anchor}) over every image modality."""
        if self._clusters is None:
            pool, files = [], []
            for modality in IMAGE_MODALITIES:
                for split in SPLITS:
                    try:
                        found = self.layout.samples(split, [modality])
                    except MmfusionError:  # a modality (or a split of it) the layout lacks
                        continue
                    pool += [(split, x) for x in found]
                    files += [(modality, x) for x in found]
            self._clusters = self._cluster(pool, files)
        return self._clusters

    def _cluster(
        self, pool: list[tuple[str, Sample]], files: list[tuple[str, Sample]]
    ) -> tuple[dict[str, str], dict[str, str]]:
        """Link the near-duplicate files of each modality (and, for group, each patient's
        samples); each cluster's anchor is its smallest sample id."""
        split_of = {x.sample_id: split for split, x in pool}
        ids = sorted(split_of)
        index = {sample_id: i for i, sample_id in enumerate(ids)}
        links: list[tuple[int, int]] = []
        for modality in dict.fromkeys(m for m, _ in files):
            paths = {
                x.sample_id: x.files[modality]
                for m, x in files
                if m == modality and x.files[modality].suffix.lower() not in AUDIO_EXTS
            }
            hashes = cached_phashes(paths.values(), self.window, self.cache_dir)
            owners = list(paths)
            found = near_pairs([hashes[paths[o]] for o in owners], self.distance)
            links += [(index[owners[a]], index[owners[b]]) for a, b, _ in found]
            log.info("%s: %d near-duplicate image pairs", modality, len(found))
        if self.policy == "group":  # moving a cluster must not split a patient
            first: dict[str, int] = {}
            for _, x in pool:
                if x.patient is not None:
                    links.append(
                        (first.setdefault(x.patient, index[x.sample_id]), index[x.sample_id])
                    )
        component = clusters(len(ids), links)
        anchors: dict[int, str] = {}
        for sample_id, c in zip(ids, component, strict=True):
            anchors.setdefault(int(c), sample_id)  # ids are sorted: the first is the smallest
        return split_of, {
            sample_id: anchors[int(c)] for sample_id, c in zip(ids, component, strict=True)
        }

    def _apply(
        self,
        pool: list[tuple[str, Sample]],
        split_of: dict[str, str],
        anchor_of: dict[str, str],
    ) -> dict[str, list[Sample]]:
        result: dict[str, list[Sample]] = {split: [] for split in SPLITS}
        # group: clusters as found over all modalities; drop: the members this run has
        everywhere = Counter(anchor_of.values())
        here = Counter(anchor_of[x.sample_id] for _, x in pool)
        sizes = everywhere if self.policy == "group" else here
        kept: set[str] = set()
        moved = dropped = 0
        for split, sample in sorted(pool, key=lambda item: item[1].sample_id):
            anchor = anchor_of[sample.sample_id]
            if sizes[anchor] == 1:
                result[split].append(sample)
            elif self.policy == "drop":  # the first member present stays where it is
                dropped += anchor in kept
                if anchor not in kept:
                    result[split].append(sample)
                kept.add(anchor)
            else:  # to the anchor's split, as one unit for k-fold too
                moved += split != split_of[anchor]
                result[split_of[anchor]].append(replace(sample, patient=f"cluster:{anchor}"))
        grouped = sum(sizes[anchor] > 1 for anchor in here)
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
