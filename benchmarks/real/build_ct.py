"""COVID-CT (Zhao et al. 2020) CT slices, covid vs non_covid, as a patient-grouped 5-fold benchmark.

    python benchmarks/real/build_ct.py SOURCE OUT --metadata COVID-CT-MetaInfo.xlsx

SOURCE holds `CT_COVID/` and `CT_NonCOVID/` (directly or under `Images-processed/`): the unzipped
images of github.com/UCSD-AI4H/COVID-CT, or a public copy of them such as
github.com/GKasperek/data_c19_cropped (the same file names, cropped). Patients: covid images by
the `Patient ID` column of COVID-CT-MetaInfo.xlsx; the source gives no patient for non-covid
images, so images cut from one figure (`<n>%<k>.jpg`, the `%k` suffix the COVID-CT names use for
panels of one figure, which the metadata shows to be one patient for covid) share a group, and
every other non-covid image is its own patient.
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
    file_sha256,
    list_files,
    read_xlsx,
    safe_id,
    snapshot_source,
)

FOLDERS = {"CT_COVID": "covid", "CT_NonCOVID": "non_covid"}
PANEL = re.compile(r"^(.+)%\d+$")  # `<figure>%<panel>`: panels cut from one figure

LICENSE = """# Source and licence: ct (COVID-CT)

Images copied from https://github.com/{repo} (commit {commit}){copy_note}.
Original dataset: https://github.com/UCSD-AI4H/COVID-CT (folders `Images-processed/CT_COVID`,
`Images-processed/CT_NonCOVID`); patient ids from its `COVID-CT-MetaInfo.xlsx`, read from
{meta_source}.

Licence: the COVID-CT repository states that the images are collected from COVID-19-related
papers (medRxiv, bioRxiv, NEJM, JAMA, Lancet, ...) and that **all copyrights of the data belong
to the authors and publishers of these papers**; no open licence is granted. The copy used has
no licence file of its own. Use for non-commercial research only, with attribution.

Cite: Zhao J, Zhang Y, He X, Xie P. COVID-CT-Dataset: a CT scan dataset about COVID-19.
arXiv:2003.13865 (2020). https://arxiv.org/abs/2003.13865

These are images of real patients: do not redistribute this folder or derived images.
"""


def find_image_root(source: Path) -> Path:
    """The folder holding CT_COVID and CT_NonCOVID."""
    for candidate in (source, source / "Images-processed"):
        if all((candidate / folder).is_dir() for folder in FOLDERS):
            return candidate
    raise SystemExit(
        f"{source} has no CT_COVID/ and CT_NonCOVID/ folders (unzip the COVID-CT "
        "Images-processed/*.zip archives first)"
    )


def covid_patients(metadata: Path | None) -> dict[str, str]:
    """file stem -> COVID-CT patient id, from COVID-CT-MetaInfo.xlsx.

    Keyed by stem: some of the sheet's file names lack the `.png` the image files have.
    """
    if metadata is None:
        return {}
    rows = read_xlsx(metadata)
    return {
        stem_of(row["File name"]): row["Patient ID"]
        for row in rows
        if row.get("File name") and row.get("Patient ID")
    }


def stem_of(name: str) -> str:
    """The name without an image suffix (names hold dots and '%', so not Path.stem blindly)."""
    path = Path(name)
    return path.stem if path.suffix.lower() in IMAGE_SUFFIXES else name


def list_items(root: Path, image_root: Path, patients: dict[str, str]) -> tuple[list, dict]:
    items, how = [], Counter()
    for folder, label in FOLDERS.items():
        for path in list_files(image_root / folder, IMAGE_SUFFIXES):
            panel = PANEL.match(path.stem)
            if label == "covid" and path.stem in patients:
                patient, kind = f"ucsd-{safe_id(patients[path.stem])}", "MetaInfo Patient ID"
            elif panel:
                patient, kind = f"{label}-fig-{safe_id(panel.group(1))}", "figure panels (%k)"
            else:
                patient, kind = f"{label}-file-{safe_id(path.stem)}", "own patient"
            how[f"{label}: {kind}"] += 1
            rel = path.relative_to(root).as_posix()
            items.append(Item(path=path, rel=rel, label=label, patient=patient))
    return items, dict(sorted(how.items()))


def main(argv: list[str] | None = None) -> None:
    parser = builder_arguments(__doc__, "folder holding CT_COVID/ and CT_NonCOVID/")
    parser.add_argument(
        "--repo",
        default="GKasperek/data_c19_cropped",
        help="owner/name of the repository SOURCE is a copy of (default: %(default)s)",
    )
    parser.add_argument(
        "--metadata",
        type=Path,
        help="COVID-CT-MetaInfo.xlsx (default: SOURCE/COVID-CT-MetaInfo.xlsx if present); "
        "without it each covid image is its own patient",
    )
    parser.add_argument("--metadata-source", default="", help="where the xlsx came from")
    args = parser.parse_args(argv)

    metadata = args.metadata
    if metadata is None and (args.source / "COVID-CT-MetaInfo.xlsx").is_file():
        metadata = args.source / "COVID-CT-MetaInfo.xlsx"
    patients = covid_patients(metadata)
    image_root = find_image_root(args.source)
    items, how = list_items(args.source, image_root, patients)
    prefix = image_root.relative_to(args.source).as_posix()
    absent = absent_from_snapshot(args.source, "" if prefix == "." else prefix)
    absent = [a for a in absent if Path(a).suffix.lower() in IMAGE_SUFFIXES]
    meta_source = args.metadata_source or (metadata.name if metadata else "nowhere (not given)")
    cropped = args.repo == "GKasperek/data_c19_cropped"
    source = snapshot_source(
        args,
        args.repo,
        note=(
            "cropped copy of UCSD-AI4H/COVID-CT Images-processed (same file names); the original "
            "repository snapshot exceeds the fetch limit"
            if cropped
            else ""
        ),
    )
    copy_note = (
        ", a cropped copy of COVID-CT's images with the original file names" if cropped else ""
    )
    names_in_meta = set(patients)
    covid_names = {i.path.stem for i in items if i.label == "covid"}
    extra = {
        "patient_grouping": how,
        "metadata": {
            "source": meta_source,
            "sha256": file_sha256(metadata) if metadata else "",
            "rows_with_patient": len(patients),
            "distinct_patients": len(set(patients.values())),
            "covid_files_matched": len(covid_names & names_in_meta),
            "metadata_files_not_in_source": sorted(names_in_meta - covid_names),
            "covid_files_not_in_metadata": sorted(covid_names - names_in_meta),
        },
        "labels": "covid vs non_covid (CT_COVID vs CT_NonCOVID)",
        "non_covid_patients": "not given by the source: figure panels grouped, rest one each",
    }
    text = LICENSE.format(
        repo=args.repo, commit=source.commit, copy_note=copy_note, meta_source=meta_source
    )
    build_from_arguments(
        args,
        name="ct",
        modality="ct",
        items=items,
        source=source,
        license_text=text,
        extra=extra,
        absent=absent,
    )


if __name__ == "__main__":
    main()
