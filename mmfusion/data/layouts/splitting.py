"""Seeded, stratified assignment of patients (or stems, or files) to train / val / test.

Used by the layouts whose data arrive unsplit. The assignment is made per class, from sorted ids
and a generator seeded by (seed, class name), so it does not depend on the order files are
listed in, nor on which other classes exist, nor on which modalities a run uses.
"""

from __future__ import annotations

import logging
import zlib
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence

import numpy as np

from mmfusion.errors import ConfigError

log = logging.getLogger(__name__)
SPLITS = ("train", "val", "test")


def split_sizes(n: int, sizes: Mapping[str, float], class_name: str = "") -> dict[str, int]:
    """How many of `n` ids go to each split.

    `sizes` holds either counts per class (all ints, e.g. 400/50/50: extra ids stay unused, and
    a class with fewer ids is scaled down proportionally) or fractions summing to 1.
    """
    if set(sizes) != set(SPLITS):
        raise ConfigError(f"split sizes {dict(sizes)}: give exactly {list(SPLITS)}")
    if any(v < 0 for v in sizes.values()):
        raise ConfigError(f"split sizes {dict(sizes)}: negative size")
    counts = all(float(v).is_integer() and v >= 1 for v in sizes.values())
    if counts:
        wanted = sum(sizes.values())
        if n >= wanted:
            if n > wanted:
                log.info(
                    "class %s: %d of %d ids unused (split sizes %s)",
                    class_name,
                    n - wanted,
                    n,
                    dict(sizes),
                )
            return {s: int(sizes[s]) for s in SPLITS}
        log.warning(
            "class %s has %d ids, fewer than the %d asked for (%s): split scaled down",
            class_name,
            n,
            wanted,
            dict(sizes),
        )
        fractions = {s: sizes[s] / wanted for s in SPLITS}
    else:
        if abs(sum(sizes.values()) - 1.0) > 1e-6:
            raise ConfigError(f"split fractions {dict(sizes)} must sum to 1 (or give counts)")
        fractions = dict(sizes)
    held_out = {s: round(n * fractions[s]) for s in ("val", "test")}
    for split in held_out:  # every split of a non-tiny class gets at least one id
        if fractions[split] > 0 and held_out[split] == 0 and n >= 3:
            held_out[split] = 1
    return {"train": n - sum(held_out.values()), **held_out}


def assign_splits(
    ids_by_class: Mapping[str, Sequence[str]], sizes: Mapping[str, float], seed: int
) -> dict[str, dict[str, str]]:
    """{class: {id: split}}; ids beyond the requested counts are left out."""
    assignment = {}
    for class_name, ids in ids_by_class.items():
        ordered = sorted(set(ids))
        rng = np.random.default_rng([seed, zlib.crc32(class_name.encode())])
        shuffled = [ordered[i] for i in rng.permutation(len(ordered))]
        counts = split_sizes(len(ordered), sizes, class_name)
        assignment[class_name] = {}
        start = 0
        for split in ("test", "val", "train"):
            for id_ in shuffled[start : start + counts[split]]:
                assignment[class_name][id_] = split
            start += counts[split]
    return assignment


def assign_grouped_splits(
    ids_by_class: Mapping[str, Sequence[str]],
    group_of: Mapping[str, str],
    sizes: Mapping[str, float],
    seed: int,
) -> dict[str, dict[str, str]]:
    """As `assign_splits`, but whole groups (patients: `group_of[id]`) go to one split.

    Groups are what is counted and stratified: each group under the class most of its ids have
    (ties: the first class name), so a patient with files in two classes is not split either.
    """
    members: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for class_name, ids in ids_by_class.items():
        for id_ in ids:
            members[group_of[id_]].append((class_name, id_))
    groups_by_class: dict[str, list[str]] = {name: [] for name in ids_by_class}
    for group, items in members.items():
        counts = Counter(name for name, _ in items)
        groups_by_class[min(counts, key=lambda name: (-counts[name], name))].append(group)
    by_group = {}
    for assigned in assign_splits(groups_by_class, sizes, seed).values():
        by_group |= assigned
    return {
        name: {id_: by_group[group_of[id_]] for id_ in ids if group_of[id_] in by_group}
        for name, ids in ids_by_class.items()
    }
