"""Induced-cough recordings of covid19-cough/dataset, covid vs healthy, as a 5-fold benchmark.

    python benchmarks/real/build_cough.py SOURCE OUT [--verified-only]

SOURCE is a work tree of github.com/covid19-cough/dataset: `metadata.json` (one entry per file
of `raw/`, CC0) gives the label in its `covid19` field: true -> covid, false -> healthy (the
dataset's "covid negative healthy" group). The source names no speaker, so every recording is its
own patient: two recordings of one person could sit in different folds, and nothing here can
tell. `--verified-only` keeps only the covid recordings whose PCR result the lab confirmed
(`verified: true`); the others were confirmed by the speaker's word.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from common import (
    Item,
    absent_from_snapshot,
    build_from_arguments,
    builder_arguments,
    is_lfs_pointer,
    safe_id,
    snapshot_source,
)

REPO = "covid19-cough/dataset"

LICENSE = """# Source and licence: cough (covid19-cough/dataset)

Recordings copied from https://github.com/{repo} (commit {commit}), folder `raw/`, labels from
its `metadata.json` (`covid19` field).

Licence: **CC0 1.0 Universal** (public-domain dedication), the repository's LICENSE file:
https://creativecommons.org/publicdomain/zero/1.0/ . No attribution is required; please cite
the repository: covid19-cough/dataset, "Dataset of recordings of induced cough",
https://github.com/{repo} (recordings collected by phone via a call centre and a Telegram bot).

These are recordings of real people: keep them for research use.
"""


def describe(entry: dict) -> dict:
    """The metadata fields a report should break down by class (they may confound)."""
    return {
        "source": str(entry.get("source")),
        "verified": str(entry.get("verified")),
        "asymptomatic": str(entry.get("asymptomatic")),
        "kind": str(entry.get("kind")),
    }


def list_items(root: Path, verified_only: bool) -> tuple[list[Item], dict]:
    entries = json.loads((root / "metadata.json").read_text(encoding="utf-8"))
    items, skipped = [], Counter()
    for entry in sorted(entries, key=lambda e: e["filename"]):
        path = root / "raw" / entry["filename"]
        if not path.is_file() or is_lfs_pointer(path):
            skipped["file absent"] += 1
            continue
        if not isinstance(entry.get("covid19"), bool):
            skipped["covid19 field not true/false"] += 1
            continue
        label = "covid" if entry["covid19"] else "healthy"
        if verified_only and label == "covid" and entry.get("verified") is not True:
            skipped["covid, not lab-verified (--verified-only)"] += 1
            continue
        item = Item(
            path=path,
            rel=path.relative_to(root).as_posix(),
            label=label,
            patient=f"rec-{safe_id(path.stem)}",
        )
        item.info = describe(entry)
        items.append(item)
    return items, dict(sorted(skipped.items()))


def breakdown(items: list[Item]) -> dict:
    """Per class: how many recordings per metadata value (source, verified, ...)."""
    table: dict[str, dict] = {}
    for label in sorted({i.label for i in items}):
        members = [i for i in items if i.label == label]
        table[label] = {
            key: dict(sorted(Counter(i.info[key] for i in members).items()))
            for key in ("source", "verified", "asymptomatic", "kind")
        }
    return table


def main(argv: list[str] | None = None) -> None:
    parser = builder_arguments(
        __doc__, "work tree of github.com/covid19-cough/dataset", near_duplicates=False
    )
    parser.add_argument(
        "--verified-only", action="store_true", help="covid: lab-verified recordings only"
    )
    args = parser.parse_args(argv)

    items, skipped = list_items(args.source, args.verified_only)
    if not items:
        parser.error(f"no recordings listed in {args.source / 'metadata.json'}")
    source = snapshot_source(args, REPO)
    extra = {
        "patient_grouping": "none in the source: each recording is its own patient",
        "metadata_skipped": skipped,
        "labels": "covid (covid19=true) vs healthy (covid19=false)"
        + (", covid lab-verified only" if args.verified_only else ""),
    }
    build_from_arguments(
        args,
        name="cough",
        modality="cough",
        items=items,
        source=source,
        license_text=LICENSE.format(repo=REPO, commit=source.commit),
        extra=extra,
        absent=absent_from_snapshot(args.source, "raw"),
        describe_kept=lambda kept: {"metadata_per_class": breakdown(kept)},
    )


if __name__ == "__main__":
    main()
