"""The cheap leakage check run before training: byte-identical files, and patients
(`data.patient_key`), in more than one split.

Content hashes (SHA-256) are cached per file path, size and mtime, so a second run re-reads
nothing. The full checks (near-duplicates, confounds) are in `python -m mmfusion.check`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from filelock import FileLock

from mmfusion.data.layouts.folders import Sample
from mmfusion.data.layouts.patients import OPTION
from mmfusion.errors import DataError

log = logging.getLogger(__name__)


def file_sha256(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def stat_key(path: Path) -> str:
    """What identifies one version of a file in a cache: path, size, modification time."""
    try:
        stat = path.stat()
    except OSError:
        return f"{path}|missing"
    return f"{path.absolute()}|{stat.st_size}|{stat.st_mtime_ns}"


def sha256_of(paths: Iterable[Path], cache_dir: Path | None = None) -> dict[Path, str]:
    """{path: hex digest} of every readable file (unreadable ones are the decoder's to report)."""
    paths = list(dict.fromkeys(paths))
    cache_file = Path(cache_dir) / "sha256.json" if cache_dir else None
    cached = read_json_cache(cache_file)
    digests, fresh = {}, {}
    for path in paths:
        key = stat_key(path)
        if key in cached:
            digests[path] = cached[key]
            continue
        try:
            digests[path] = fresh[key] = file_sha256(path)
        except OSError:
            continue
    if cache_file and fresh:
        add_to_json_cache(cache_file, fresh)
    return digests


def read_json_cache(cache_file: Path | None) -> dict:
    """The entries of a JSON cache file; none where there is no file or it cannot be read (a
    cache is only ever a shortcut)."""
    try:
        return json.loads(cache_file.read_text()) if cache_file and cache_file.is_file() else {}
    except (OSError, ValueError):
        return {}


def add_to_json_cache(cache_file: Path, fresh: Mapping[str, object]) -> None:
    """Merge `fresh` entries into a JSON cache file that concurrent jobs share: under a file
    lock, written to a temporary file and renamed, so no reader sees half a file."""
    cache_file.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(cache_file) + ".lock"):
        current = json.loads(cache_file.read_text()) if cache_file.is_file() else {}
        tmp = cache_file.with_name(f".{cache_file.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(current | dict(fresh)))
        os.replace(tmp, cache_file)


def cross_split_duplicates(
    samples_by_split: Mapping[str, Sequence[Sample]], cache_dir: Path | None = None
) -> list[list[tuple[str, str, Path]]]:
    """Groups of byte-identical files that occur in more than one split: [(split, id, path)]."""
    located = [
        (split, sample.sample_id, path)
        for split, samples in samples_by_split.items()
        for sample in samples
        for path in sample.files.values()
    ]
    digests = sha256_of((path for *_, path in located), cache_dir)
    groups: dict[str, list[tuple[str, str, Path]]] = defaultdict(list)
    for split, sample_id, path in located:
        if path in digests:
            groups[digests[path]].append((split, sample_id, path))
    return [g for g in groups.values() if len({split for split, *_ in g}) > 1]


def patients_across_splits(
    samples_by_split: Mapping[str, Sequence[Sample]],
) -> dict[str, list[str]]:
    """{patient: [split: sample id, ...]} of the patients (`Sample.patient`, set by
    `data.patient_key`) whose samples lie in more than one split."""
    where: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for split, samples in samples_by_split.items():
        for sample in samples:
            if sample.patient is not None:
                where[sample.patient][split].append(sample.sample_id)
    return {
        patient: [f"{split}: {', '.join(ids)}" for split, ids in splits.items()]
        for patient, splits in sorted(where.items())
        if len(splits) > 1
    }


def refuse_leakage(
    samples_by_split: Mapping[str, Sequence[Sample]],
    allow_leakage: bool,
    cache_dir: Path | None = None,
) -> list[list[tuple[str, str, Path]]]:
    """Raise when a file or a patient is shared across splits, unless `allow_leakage`; return
    the groups of shared files."""
    crossing = patients_across_splits(samples_by_split)
    if crossing:
        patient, places = next(iter(crossing.items()))
        message = (
            f"leakage: {len(crossing)} patient(s) ({OPTION}) have files in more than one split, "
            f"e.g. {patient} in {'; '.join(places)}; split by patient (e.g. drop the split / fold "
            "column so the layout splits by patient_key)"
        )
        if not allow_leakage:
            raise DataError(f"{message}; data.allow_leakage=true trains anyway")
        log.warning("%s (allowed by data.allow_leakage=true)", message)
    groups = cross_split_duplicates(samples_by_split, cache_dir)
    if not groups:
        return groups
    first = groups[0][0]
    other = next(entry for entry in groups[0] if entry[0] != first[0])
    example = " == ".join(f"{path} ({split})" for split, _, path in (first, other))
    message = (
        f"leakage: {len(groups)} file(s) are byte-identical across splits, e.g. {example}; "
        "run `python -m mmfusion.check` with the same data options for the full list"
    )
    if not allow_leakage:
        raise DataError(f"{message}; data.allow_leakage=true trains anyway")
    log.warning("%s (allowed by data.allow_leakage=true)", message)
    return groups
