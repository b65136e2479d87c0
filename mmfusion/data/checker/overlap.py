"""Files shared with another data set (`check.against`): a transfer source, a pretraining set
or an external test set must hold no copy of the checked data's images, byte-identical
(SHA-256) or re-encoded / resized (perceptual hash within `check.phash_distance` bits).

Public CXR collections re-host the same images (DarkCovidNet's covid X-rays come from the
covid-chestxray-dataset, which other sets copy), so an encoder pretrained on one set and
tested on another can have seen test images: the checker names every such file.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from mmfusion.data.layouts.folders import AUDIO_EXTS, IMAGE_EXTS
from mmfusion.errors import DataError

MODALITY_COLUMNS = ("ct", "cxr", "cough")


def files_of(source: Path) -> list[Path]:
    """The image and audio files of another data set: below a folder, or listed in a manifest
    CSV's modality columns (paths relative to the CSV's folder)."""
    if source.is_dir():
        return sorted(p for p in source.rglob("*") if p.suffix.lower() in IMAGE_EXTS | AUDIO_EXTS)
    if source.is_file() and source.suffix.lower() == ".csv":
        with source.open(newline="") as handle:
            rows = list(csv.DictReader(handle))
        cells = (row.get(m) for row in rows for m in MODALITY_COLUMNS)
        return sorted({source.parent / cell for cell in cells if cell})
    raise DataError(f"check.against={source}: not a folder or a manifest .csv")


def overlap(
    records: Iterable[dict[str, Any]],
    others: list[dict[str, Any]],
    distance: int,
) -> tuple[list[str], list[str]]:
    """(byte-identical, near-duplicate) pairs between the checked records and the other set's
    inspected files, each as 'checked file (split/class) == / ~ other file'."""
    by_sha = {o["sha256"]: o["path"] for o in others if o.get("sha256")}
    with_hash = [o for o in others if o.get("phash")]
    hashes = (
        np.stack([np.frombuffer(bytes.fromhex(o["phash"]), np.uint64) for o in with_hash])
        if with_hash
        else None
    )
    exact, near = [], []
    for record in records:
        where = f"{record['path']} ({record['split']}/{record['class']})"
        if record.get("sha256") in by_sha:
            exact.append(f"{where} == {by_sha[record['sha256']]}")
        elif record.get("phash") and hashes is not None:
            mine = np.frombuffer(bytes.fromhex(record["phash"]), np.uint64)
            bits = np.bitwise_count(hashes ^ mine).sum(axis=1)
            closest = int(bits.argmin())
            if bits[closest] <= distance:
                near.append(f"{where} ~ {with_hash[closest]['path']} (distance {bits[closest]})")
    return exact, near


def check_against(
    records: list[dict[str, Any]],
    sources: Iterable[str],
    inspect: Callable[[list[dict[str, Any]]], None],
    distance: int,
    add: Callable[..., None],
) -> dict[str, int]:
    """Report (through `add`) every checked file that another set also holds; counts per set."""
    counts = {}
    for source in map(Path, sources):
        if not source.exists():
            raise DataError(f"check.against={source}: no such file or folder")
        others = [{"path": path, "modality": None} for path in files_of(source)]
        inspect(others)
        exact, near = overlap(records, [o for o in others if not o["error"]], distance)
        counts[str(source)] = len(exact) + len(near)
        for pairs, how in ((exact, "byte-identical"), (near, f"within {distance} phash bits")):
            if pairs:
                add(
                    "error",
                    "overlap",
                    f"OVERLAP: {len(pairs)} file(s) also in {source} ({how}): a model "
                    "pretrained there has seen them; exclude them from one of the sets",
                    pairs,
                )
    return counts
