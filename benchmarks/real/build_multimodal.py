"""Three-modality pseudo-patients (CT + CXR + cough), covid vs non_covid, from three builds.

    python benchmarks/real/build_multimodal.py OUT --ct CT_OUT --cxr CXR_OUT --cough COUGH_OUT

Each input is the folder a single-modality builder wrote (its manifest.csv with `fold`). **No
real patient has all three modalities**: the three sources are different people. Folds come
from each modality's own build, assigned by patient *before* pairing; then, within one fold
and class, the i-th file of each modality (ordered by SHA-256, i.e. by content, not by name or
patient) forms pseudo-patient i. So a real patient's files stay in one fold, and pairing never
moves a file across folds. Labels: `covid` stays covid; every other label (no_findings,
pneumonia, non_covid, healthy) becomes `non_covid`. Which CXR negatives are used is chosen by
the CXR build passed: cxr2 (no_findings only, the default here) or cxr3 (+ pneumonia).
Pseudo-patients per fold and class = the smallest modality's count; the rest are left out and
counted in the report.
"""

from __future__ import annotations

import argparse
import shutil
from collections import Counter, defaultdict
from pathlib import Path

from common import (
    MODALITIES,
    Item,
    audio_profile,
    environment,
    image_profile,
    profile_per_class,
    read_manifest,
    write_csv,
    write_json,
)

POSITIVE = "covid"
NEGATIVE = "non_covid"

HEADER = """# Source and licence: multimodal pseudo-patients

**No real patient in this benchmark has all three modalities.** Each row joins a CT slice, a
chest X-ray and a cough recording of three different people, drawn from three unrelated public
sources, with the same label (covid / non_covid) and from the same fold. Such a benchmark tests
fusion machinery, not clinical multimodal diagnosis; results on it do not transfer to real
multimodal patients.

Each file keeps the licence of its source, reproduced below.

"""


def binary(label: str) -> str:
    return POSITIVE if label == POSITIVE else NEGATIVE


def load_build(folder: Path, modality: str) -> list[dict]:
    rows = read_manifest(folder / "manifest.csv")
    if not rows or modality not in rows[0] or "fold" not in rows[0]:
        raise SystemExit(f"{folder}/manifest.csv has no {modality} or fold column")
    for row in rows:
        row["binary"] = binary(row["label"])
        row["folder"] = folder
    return rows


def pair(builds: dict[str, list[dict]]) -> tuple[list[dict], dict]:
    """Rows of pseudo-patients and, per fold and class, how many files each modality had."""
    cells: dict[tuple[str, str], dict[str, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for modality, rows in builds.items():
        for row in rows:
            cells[(row["fold"], row["binary"])][modality].append(row)
    pseudo, table = [], {}
    for (fold, label), by_modality in sorted(cells.items()):
        for modality in builds:
            by_modality[modality].sort(key=lambda r, m=modality: r[f"sha256_{m}"])
        n = min(len(by_modality[m]) for m in builds)
        table[f"fold {fold} {label}"] = {
            "available": {m: len(by_modality[m]) for m in builds},
            "pseudo_patients": n,
        }
        for i in range(n):
            pseudo.append(
                {"fold": fold, "label": label, "index": i} | {m: by_modality[m][i] for m in builds}
            )
    return pseudo, table


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="output folder (files, manifest.csv, reports)")
    for modality in MODALITIES:
        parser.add_argument(
            f"--{modality}", type=Path, required=True, help=f"folder of the {modality} build"
        )
    args = parser.parse_args(argv)

    inputs = {m: getattr(args, m) for m in MODALITIES}
    builds = {m: load_build(folder, m) for m, folder in inputs.items()}
    pseudo, table = pair(builds)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    for modality in MODALITIES:
        shutil.rmtree(out / modality, ignore_errors=True)

    rows, used = [], defaultdict(list)
    for entry in pseudo:
        pid = f"pp-{entry['label']}-f{entry['fold']}-{entry['index']:04d}"
        row = {"patient_id": pid, "label": entry["label"]}
        for modality in MODALITIES:
            src = entry[modality]
            name = Path(src[modality]).name
            rel = f"{modality}/{entry['label']}/{name}"
            if (out / rel).exists():  # same name from two source labels
                rel = f"{modality}/{entry['label']}/{src[f'sha256_{modality}'][:8]}_{name}"
            target = out / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src["folder"] / src[modality], target)
            row[modality] = rel
            used[modality].append(
                Item(path=target, rel=rel, label=entry["label"], patient=src["source_patient"])
            )
        row["fold"] = entry["fold"]
        for modality in MODALITIES:
            src = entry[modality]
            row[f"sha256_{modality}"] = src[f"sha256_{modality}"]
            row[f"source_patient_{modality}"] = src["source_patient"]
            row[f"label_{modality}"] = src["label"]
        row["source"] = ";".join(f"{m}={entry[m]['source']}" for m in MODALITIES)
        row["commit"] = ";".join(f"{m}={entry[m]['commit']}" for m in MODALITIES)
        rows.append(row)
    columns = [
        "patient_id",
        "label",
        *MODALITIES,
        "fold",
        *(f"sha256_{m}" for m in MODALITIES),
        *(f"source_patient_{m}" for m in MODALITIES),
        *(f"label_{m}" for m in MODALITIES),
        "source",
        "commit",
    ]
    rows.sort(key=lambda r: (r["label"], r["patient_id"]))
    write_csv(out / "manifest.csv", columns, rows)

    licences = [HEADER]
    for modality, folder in inputs.items():
        text = (folder / "LICENSE-SOURCE.md").read_text(encoding="utf-8")
        licences.append(f"## {modality} (from the `{folder.name}` build)\n\n{text.strip()}\n\n")
    (out / "LICENSE-SOURCE.md").write_text("".join(licences).rstrip() + "\n", encoding="utf-8")

    counts = Counter(r["label"] for r in rows)
    report = {
        "benchmark": "multimodal",
        "no_real_patient_has_all_three_modalities": True,
        "construction": (
            "folds from each modality's own patient-grouped build; within fold and class the "
            "i-th file of each modality by SHA-256 order forms pseudo-patient i"
        ),
        "inputs": {m: folder.name for m, folder in inputs.items()},
        "label_map": {
            m: dict(sorted({r["label"]: r["binary"] for r in rows_}.items()))
            for m, rows_ in builds.items()
        },
        "pseudo_patients": len(rows),
        "pseudo_patients_per_class": dict(sorted(counts.items())),
        "per_fold_and_class": table,
        "files_left_out": {m: len(builds[m]) - len(used[m]) for m in MODALITIES},
        "files_left_out_per_class": {
            m: dict(
                sorted(
                    (
                        Counter(r["binary"] for r in builds[m]) - Counter(i.label for i in used[m])
                    ).items()
                )
            )
            for m in MODALITIES
        },
        "sources": {
            m: sorted({f"{r['source']}@{r['commit']}" for r in builds[m]}) for m in MODALITIES
        },
        "profile_per_class": {
            "ct": profile_per_class(used["ct"], image_profile),
            "cxr": profile_per_class(used["cxr"], image_profile),
            "cough": profile_per_class(used["cough"], audio_profile),
        },
        "environment": environment(),
    }
    write_json(out / "build_report.json", report)
    print(
        f"multimodal: {len(rows)} pseudo-patients {dict(sorted(counts.items()))}; "
        f"left out {report['files_left_out']}"
    )


if __name__ == "__main__":
    main()
