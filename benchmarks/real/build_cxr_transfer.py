"""A CXR transfer-source set that shares no image with another benchmark (e.g. cxr3).

    python benchmarks/real/build_cxr_transfer.py SOURCE OUT --exclude CXR3_OUT/manifest.csv

SOURCE holds class folders anywhere below it (`NORMAL/`, `PNEUMONIA/`, `COVID/`, ...: any
train/val/test split of the copy is pooled and re-folded here). Built by default from
github.com/szallik/Neural_networks_binary_classification, a copy of the pediatric chest X-ray set
of Kermany et al. 2018 (Guangzhou Women and Children's Medical Center) re-encoded at 224x224 RGB
with the original file names. Patients follow those names, `(disease)-(patient)-(image)`:
`person<id>_{bacteria,virus}_<n>[_<k>]` (pneumonia), `IM-<id>-<n>` and `NORMAL2-IM-<id>-<n>`
(normal); other names are their own patient. Every file whose SHA-256, or whose phash within 4
bits, matches a file of an `--exclude` manifest is left out and counted.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

from common import (
    IMAGE_SUFFIXES,
    Item,
    absent_from_snapshot,
    build_from_arguments,
    builder_arguments,
    safe_id,
    snapshot_source,
)

CLASS_DIRS = {"normal": "normal", "pneumonia": "pneumonia", "covid": "covid", "covid19": "covid"}
PATIENT_PATTERNS = (
    (re.compile(r"^person(\d+)_(?:bacteria|virus)_\d+(?:_\d+)?$", re.I), "kermany-person-{}"),
    (re.compile(r"^IM-(\d+)-\d+(?:-\d+)?$", re.I), "kermany-IM-{}"),
    (re.compile(r"^NORMAL2-IM-(\d+)-\d+(?:-\d+)?$", re.I), "kermany-NORMAL2-IM-{}"),
)

LICENSE = """# Source and licence: cxr_transfer (pediatric chest X-rays, Kermany et al. 2018)

Images copied from https://github.com/{repo} (commit {commit}): a copy of "Labeled Optical
Coherence Tomography (OCT) and Chest X-Ray Images for Classification" (chest X-ray part),
re-encoded by that repository at 224x224 RGB JPEG with the original file names.

Original data: Kermany D, Zhang K, Goldbaum M. Mendeley Data, v2, 2018.
https://doi.org/10.17632/rscbjbr9sj.2 . Licence: **CC BY 4.0**
(https://creativecommons.org/licenses/by/4.0/): attribution required.
Cite: Kermany DS, Goldbaum M, Cai W, et al. Identifying Medical Diagnoses and Treatable Diseases
by Image-Based Deep Learning. Cell 2018;172(5):1122-1131.e9.
https://doi.org/10.1016/j.cell.2018.02.010
The copy's repository has no licence file of its own; the images' CC BY 4.0 terms apply.

Pediatric patients (1-5 years), anterior-posterior views, one hospital: a domain shift from the
adult covid / NIH images of cxr3, which is what a transfer source is for. No file here matches a
cxr3 file by SHA-256 or by phash (<= 4 bits); see build_report.json.
"""


def patient_of(stem: str) -> tuple[str, str]:
    for pattern, template in PATIENT_PATTERNS:
        match = pattern.match(stem)
        if match:
            return template.format(match.group(1)), template.split("-{")[0]
    return f"file-{safe_id(stem)}", "own patient"


def list_items(root: Path) -> tuple[list[Item], dict]:
    items, how = [], Counter()
    for path in sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES):
        label = CLASS_DIRS.get(path.parent.name.lower().replace("-", "").replace("_", ""))
        if label is None or not path.is_file():
            continue
        patient, kind = patient_of(path.stem)
        how[f"{label}: {kind}"] += 1
        items.append(
            Item(path=path, rel=path.relative_to(root).as_posix(), label=label, patient=patient)
        )
    return items, dict(sorted(how.items()))


def main(argv: list[str] | None = None) -> None:
    parser = builder_arguments(__doc__, "folder with NORMAL/, PNEUMONIA/, ... below it")
    parser.add_argument(
        "--repo",
        default="szallik/Neural_networks_binary_classification",
        help="owner/name of the repository SOURCE is (default: %(default)s)",
    )
    parser.add_argument(
        "--exclude",
        type=Path,
        action="append",
        default=[],
        help="manifest.csv of a benchmark this set must share no image with (repeatable)",
    )
    args = parser.parse_args(argv)

    items, how = list_items(args.source)
    if not items:
        parser.error(f"no NORMAL/PNEUMONIA/COVID class folders with images under {args.source}")
    absent = [
        a for a in absent_from_snapshot(args.source) if Path(a).suffix.lower() in IMAGE_SUFFIXES
    ]
    source = snapshot_source(
        args,
        args.repo,
        note="copy of Kermany et al. 2018 pediatric CXR (Mendeley rscbjbr9sj v2), 224x224 RGB",
    )
    report = build_from_arguments(
        args,
        name="cxr_transfer",
        modality="cxr",
        items=items,
        source=source,
        license_text=LICENSE.format(repo=args.repo, commit=source.commit),
        extra={"patient_grouping": how, "labels": "normal vs pneumonia (class folders)"},
        absent=absent,
        exclude=args.exclude,
        describe_kept=lambda kept: {
            "pneumonia_subtype": dict(
                sorted(
                    Counter(
                        ("virus" if "virus" in i.path.stem else "bacteria")
                        for i in kept
                        if i.label == "pneumonia"
                    ).items()
                )
            )
        },
    )
    excluded = report.get("excluded_as_in_reference")
    if excluded:
        print(
            f"  excluded as in {excluded['reference_manifests']}: "
            f"{excluded['excluded_sha256']} by SHA-256, {excluded['excluded_phash']} by phash"
        )


if __name__ == "__main__":
    main()
