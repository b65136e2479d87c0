"""What a split of the data is, for experiment tracking: a name, a digest of its content, where
it came from, its schema (modalities, classes) and how many patients of each class it holds.

The digest hashes every patient's id, class and files' SHA-256 (cached by the leakage check, so
computing it re-reads nothing): two runs with equal digests trained / tested on identical bytes.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from mmfusion.data.layouts.folders import Sample
from mmfusion.data.leakage import sha256_of


@dataclass(frozen=True)
class SplitDescription:
    split: str
    name: str
    digest: str
    source: str  # the data root, manifest or generated benchmark folder
    modalities: list[str]
    classes: list[str]
    counts: dict[str, int]  # patients per class

    @property
    def size(self) -> int:
        return sum(self.counts.values())


def content_digest(
    samples: Sequence[Sample], modalities: Sequence[str], classes: Sequence[str], cache_dir: Path
) -> str:
    """12 hex digits of SHA-256 over (id, class, file hashes) of the samples, in id order."""
    files = sha256_of((s.files[m] for s in samples for m in modalities), cache_dir)
    digest = hashlib.sha256()
    for sample in sorted(samples, key=lambda s: s.sample_id):
        hashes = [files.get(sample.files[m], "unreadable") for m in modalities]
        digest.update("\t".join([sample.sample_id, classes[sample.label], *hashes, "\n"]).encode())
    return digest.hexdigest()[:12]


def describe_split(
    split: str,
    samples: Sequence[Sample],
    modalities: Sequence[str],
    classes: Sequence[str],
    source: Path,
    cache_dir: Path,
) -> SplitDescription:
    counts = Counter(classes[s.label] for s in samples)
    return SplitDescription(
        split=split,
        name=f"{(source.stem if source.is_file() else source.name) or source}/{split}",
        digest=content_digest(samples, modalities, classes, cache_dir),
        source=str(source.resolve()),
        modalities=list(modalities),
        classes=list(classes),
        counts={c: counts.get(c, 0) for c in classes},
    )
