"""DarkCovidNet's chest X-ray set (Ozturk et al. 2020) as a patient-grouped 5-fold benchmark.

    python benchmarks/real/build_cxr3.py SOURCE OUT --ieee-metadata metadata.csv
    python benchmarks/real/build_cxr3.py SOURCE OUT --ieee-metadata metadata.csv --binary

SOURCE is a work tree (or download) of github.com/muhammedtalo/COVID-19, whose
`X-Ray Image DataSet/` holds Covid-19 (125), No_findings (500) and Pneumonia (500) images.
Labels: covid, no_findings, pneumonia; `--binary` keeps covid vs no_findings (the paper's
binary task). Patients: the covid images are ieee8023/covid-chestxray-dataset files, grouped by
that dataset's `patientid` (its metadata.csv, matched on file name); the others are NIH
ChestX-ray8 files named `<8-digit patient id>_<follow-up>.png`, grouped by the patient id.
"""

from __future__ import annotations

import csv
import re
from collections import Counter
from pathlib import Path

from common import (
    IMAGE_SUFFIXES,
    Item,
    absent_from_snapshot,
    build_from_arguments,
    builder_arguments,
    list_files,
    safe_id,
    snapshot_source,
)

REPO = "muhammedtalo/COVID-19"
DATA_DIR = "X-Ray Image DataSet"
FOLDERS = {"Covid-19": "covid", "No_findings": "no_findings", "Pneumonia": "pneumonia"}
NIH_NAME = re.compile(r"^(\d{8})_\d{3}\.png$")

LICENSE = """# Source and licence: cxr3 / cxr2 (DarkCovidNet X-ray set)

Files copied from https://github.com/{repo} (commit {commit}), folder `X-Ray Image DataSet/`.
That repository has **no licence file**; its images come from two public sources, whose terms
apply to each image:

- **covid**: ieee8023/covid-chestxray-dataset, https://github.com/ieee8023/covid-chestxray-dataset
  Each image carries its own licence in that dataset's `metadata.csv` (`license` column; for
  the covid images matched here: {licences}); images without one are from publications or
  sites whose copyright stays with their owners. Patient ids were read from {meta_source}.
  Cite: Cohen JP, Morrison P, Dao L, Roth K, Duong TQ, Ghassemi M. COVID-19 Image Data
  Collection: Prospective Predictions Are the Future. MELBA 2020. arXiv:2006.11988.
- **no_findings / pneumonia**: NIH Clinical Center ChestX-ray8/14,
  https://nihcc.app.box.com/v/ChestXray-NIHCC. NIH states that the use of the data set is
  unrestricted, and asks users to cite: Wang X, Peng Y, Lu L, Lu Z, Bagheri M, Summers RM.
  ChestX-ray8: Hospital-scale Chest X-ray Database and Benchmarks on Weakly-Supervised
  Classification and Localization of Common Thorax Diseases. CVPR 2017, and to acknowledge the
  NIH Clinical Center as the data provider.

The set as assembled: Ozturk T, Talo M, Yildirim EA, Baloglu UB, Yildirim O, Acharya UR.
Automated detection of COVID-19 cases using deep neural networks with X-ray images. Comput Biol
Med 2020;121:103792. https://doi.org/10.1016/j.compbiomed.2020.103792

Research use only; these are images of real patients: do not redistribute this folder or
derived images beyond what the licences above allow.
"""


def read_ieee_metadata(path: Path) -> dict[str, dict[str, str]]:
    """file name -> metadata row (keys lower-cased: the column names changed over time)."""
    with path.open(newline="", encoding="utf-8") as handle:
        rows = [
            {k.strip().lower(): (v or "").strip() for k, v in row.items() if k}
            for row in csv.DictReader(handle)
        ]
    return {row["filename"]: row for row in rows if row.get("filename")}


def list_items(root: Path, meta: dict[str, dict[str, str]], binary: bool) -> tuple[list, dict]:
    """The images with label and patient, and counts of how patients were found."""
    items, how = [], Counter()
    for folder, label in FOLDERS.items():
        if binary and label == "pneumonia":
            continue
        for path in list_files(root / DATA_DIR / folder, IMAGE_SUFFIXES):
            rel = path.relative_to(root).as_posix()
            if label == "covid":
                row = meta.get(path.name)
                if row and row.get("patientid"):
                    patient, kind = f"ieee-{safe_id(row['patientid'])}", "ieee8023 patientid"
                else:
                    patient, kind = f"file-{safe_id(path.stem)}", "unmatched: own patient"
            else:
                match = NIH_NAME.match(path.name)
                if match:
                    patient, kind = f"nih-{match.group(1)}", "NIH file-name patient id"
                else:
                    patient, kind = f"file-{safe_id(path.stem)}", "unmatched: own patient"
            how[f"{label}: {kind}"] += 1
            items.append(Item(path=path, rel=rel, label=label, patient=patient))
    return items, dict(sorted(how.items()))


def main(argv: list[str] | None = None) -> None:
    parser = builder_arguments(__doc__, "work tree of github.com/muhammedtalo/COVID-19")
    parser.add_argument(
        "--ieee-metadata",
        type=Path,
        help="ieee8023/covid-chestxray-dataset metadata.csv (any version holding the files); "
        "without it each covid image is its own patient",
    )
    parser.add_argument(
        "--ieee-metadata-source",
        default="",
        help="where that metadata.csv came from (repo@commit:path), for the report",
    )
    parser.add_argument("--binary", action="store_true", help="covid vs no_findings only")
    args = parser.parse_args(argv)

    meta = read_ieee_metadata(args.ieee_metadata) if args.ieee_metadata else {}
    items, how = list_items(args.source, meta, args.binary)
    if not items:
        parser.error(f"no images under {args.source / DATA_DIR}")
    absent = absent_from_snapshot(args.source, DATA_DIR)
    if args.binary:
        absent = [a for a in absent if "/Pneumonia/" not in a]
    covid = [meta[i.path.name] for i in items if i.label == "covid" and i.path.name in meta]
    licences = Counter(row.get("license") or "none given" for row in covid)
    meta_source = args.ieee_metadata_source or (
        args.ieee_metadata.name if args.ieee_metadata else "nowhere"
    )
    source = snapshot_source(
        args,
        REPO,
        note="covid: ieee8023/covid-chestxray-dataset; no_findings/pneumonia: NIH ChestX-ray8",
    )
    name = "cxr2" if args.binary else "cxr3"
    text = LICENSE.format(
        repo=REPO,
        commit=source.commit,
        licences=", ".join(f"{k} {v}" for k, v in sorted(licences.items())),
        meta_source=meta_source,
    )
    extra = {
        "patient_grouping": how,
        "ieee_metadata": {
            "source": meta_source,
            "rows": len(meta),
            "covid_files_matched": len(covid),
            "covid_licences": dict(sorted(licences.items())),
            "covid_findings": dict(sorted(Counter(r.get("finding", "") for r in covid).items())),
            "covid_views": dict(sorted(Counter(r.get("view", "") for r in covid).items())),
        },
        "labels": "binary: covid vs no_findings"
        if args.binary
        else "covid, no_findings, pneumonia",
    }
    build_from_arguments(
        args,
        name=name,
        modality="cxr",
        items=items,
        source=source,
        license_text=text,
        extra=extra,
        absent=absent,
    )


if __name__ == "__main__":
    main()
