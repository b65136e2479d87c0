"""Shared machinery of the real-data benchmark builders (see docs/real-data-sources.md).

Every builder lists its source's files as `Item`s (path, label, source patient) and hands them to
`build_benchmark`, which hashes them, removes byte-identical copies, optionally excludes files
that another benchmark already holds, profiles them (format, size, mode, sample rate: the
confounds a model can learn instead of the disease), finds perceptual near-duplicates, assigns
patient-grouped stratified folds, copies the files and writes `manifest.csv`,
`LICENSE-SOURCE.md` and `build_report.json`. The same input gives a byte-identical manifest and
report: everything is sorted, and nothing machine-specific (absolute paths, dates) is written.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import platform
import re
import shutil
import statistics
import subprocess
import xml.etree.ElementTree as ET
import zipfile
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

N_FOLDS = 5
FOLD_SEED = 0
PHASH_MAX_DISTANCE = 4
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".gif", ".webp"})
AUDIO_SUFFIXES = frozenset({".wav", ".mp3", ".ogg", ".flac", ".webm", ".m4a"})
MODALITIES = ("ct", "cxr", "cough")
LFS_POINTER = b"version https://git-lfs.github.com/spec/"
EXAMPLES = 25  # how many example pairs / files a report lists per finding


@dataclass
class Item:
    """One source file: where it is, its label and the patient it belongs to."""

    path: Path
    rel: str  # path inside the source, POSIX: the sort key and what reports name
    label: str
    patient: str  # source patient (group); builders prefix it with the source's name
    sha256: str = ""
    phash: int | None = None
    fold: int = -1
    patient_id: str = ""
    out_rel: str = ""
    info: dict = field(default_factory=dict)


@dataclass
class Source:
    """Provenance of one input: repository, commit, and the licence text to ship with it."""

    repo: str
    commit: str
    url: str
    note: str = ""


# ---------------------------------------------------------------- provenance


def builder_arguments(
    doc: str, source_help: str, near_duplicates: bool = True
) -> argparse.ArgumentParser:
    """The arguments every builder takes (SOURCE, OUT, --commit and, for images,
    --group-near-duplicates); a builder adds its own."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("source", type=Path, help=source_help)
    parser.add_argument("out", type=Path, help="output folder (files, manifest.csv, reports)")
    parser.add_argument("--commit", help="source commit when SOURCE is not a git checkout")
    if near_duplicates:
        parser.add_argument(
            "--group-near-duplicates",
            action="store_true",
            help="put phash near-duplicates (<= 4 bits) in one patient group before folding",
        )
    return parser


def snapshot_source(args: argparse.Namespace, repo: str, note: str = "") -> Source:
    """The provenance of SOURCE: GitHub repository `repo` at the commit of its checkout (or
    --commit, where SOURCE is not a git checkout)."""
    commit = git_commit(args.source, args.commit)
    return Source(repo=repo, commit=commit, url=f"https://github.com/{repo}", note=note)


def git_commit(path: Path, fallback: str | None) -> str:
    """HEAD of `path` when `path` is the top of a git work tree, else `fallback` or "unknown".

    The top must be `path` itself: a download unpacked inside some other repository would
    otherwise be stamped with that repository's commit.
    """
    try:
        top = subprocess.run(
            ["git", "-C", str(path), "rev-parse", "--show-toplevel"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        if Path(top).resolve() == path.resolve():
            return subprocess.run(
                ["git", "-C", str(path), "rev-parse", "HEAD"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    return fallback or "unknown"


def absent_from_snapshot(root: Path, prefix: str = "") -> list[str]:
    """Files the source's git tree lists under `prefix` that are not usable here.

    Snapshots leave out large files, and Git LFS leaves small pointer files in their place:
    both are listed, so a report says which files the benchmark could not include.
    """
    try:
        listed = subprocess.run(
            ["git", "-C", str(root), "ls-tree", "-r", "-z", "--name-only", "HEAD", "--", prefix],
            capture_output=True,
            check=True,
        ).stdout.decode("utf-8", "surrogateescape")
    except (OSError, subprocess.CalledProcessError):
        return []
    absent = []
    for name in sorted(n for n in listed.split("\0") if n):
        path = root / name
        if not path.is_file() or is_lfs_pointer(path):
            absent.append(name)
    return absent


def is_lfs_pointer(path: Path) -> bool:
    """A Git LFS pointer stands in for a file that was never downloaded."""
    if path.stat().st_size > 1024:
        return False
    with path.open("rb") as handle:
        return handle.read(len(LFS_POINTER)) == LFS_POINTER


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes: what "identical" means throughout."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def safe_id(text: str) -> str:
    """An id usable in file names and CSV cells: anything odd becomes '-'."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "x"


def list_files(root: Path, suffixes: Iterable[str]) -> list[Path]:
    """Files under `root` with one of `suffixes` (any case), sorted, LFS pointers left out."""
    wanted = {s.lower() for s in suffixes}
    return sorted(
        p
        for p in root.rglob("*")
        if p.is_file() and p.suffix.lower() in wanted and not is_lfs_pointer(p)
    )


def read_xlsx(path: Path) -> list[dict[str, str]]:
    """Rows of an .xlsx file's first sheet as dicts keyed by the header row.

    Only the standard library: enough for metadata sheets, so no spreadsheet package is needed.
    """
    ns = {"m": "http://schemas.openxmlformats.org/spreadsheetml/2006/main"}
    tag = f"{{{ns['m']}}}t"
    with zipfile.ZipFile(path) as book:
        strings = []
        if "xl/sharedStrings.xml" in book.namelist():
            root = ET.fromstring(book.read("xl/sharedStrings.xml"))
            strings = [
                "".join(t.text or "" for t in si.iter(tag)) for si in root.findall("m:si", ns)
            ]
        sheet = ET.fromstring(book.read("xl/worksheets/sheet1.xml"))
    table = []
    for row in sheet.findall(".//m:row", ns):
        cells = {}
        for cell in row.findall("m:c", ns):
            value = cell.find("m:v", ns)
            text = (
                value.text or ""
                if value is not None
                else "".join(x.text or "" for x in cell.iter(tag))
            )
            if cell.get("t") == "s":
                text = strings[int(text)]
            cells[re.sub(r"\d", "", cell.get("r", ""))] = text.strip()
        table.append(cells)
    if not table:
        return []
    header = table[0]
    return [{header[c]: row.get(c, "") for c in header} for row in table[1:] if any(row.values())]


# ---------------------------------------------------------------- duplicates and grouping


def hash_items(items: Sequence[Item]) -> None:
    for item in items:
        item.sha256 = file_sha256(item.path)


def remove_identical(items: Sequence[Item]) -> tuple[list[Item], dict, list[list[str]]]:
    """Byte-identical files: drop every copy when the copies disagree on the label (the label
    cannot be trusted), else keep the first by sorted source path.

    Copies with one label but different source patients are reported; their patients are later
    merged into one group (`merge_groups`), since one image cannot belong to two people.
    """
    by_hash: dict[str, list[Item]] = defaultdict(list)
    for item in sorted(items, key=lambda i: i.rel):
        by_hash[item.sha256].append(item)
    kept, conflicting, same_label, cross_patient = [], [], [], []
    for copies in by_hash.values():
        if len({c.label for c in copies}) > 1:
            conflicting.append([f"{c.label}:{c.rel}" for c in copies])
            continue
        kept.append(copies[0])
        if len(copies) > 1:
            same_label.append([c.rel for c in copies])
            if len({c.patient for c in copies}) > 1:
                cross_patient.append(sorted({c.patient for c in copies}))
    stats = {
        "files_in": len(items),
        "files_out": len(kept),
        "cross_label_groups": len(conflicting),
        "cross_label_files_dropped": sum(len(g) for g in conflicting),
        "same_label_groups": len(same_label),
        "same_label_copies_removed": sum(len(g) - 1 for g in same_label),
        "same_label_groups_spanning_patients": len(cross_patient),
        "examples_cross_label": conflicting[:EXAMPLES],
        "examples_same_label": same_label[:EXAMPLES],
    }
    return kept, stats, cross_patient


def merge_groups(items: Sequence[Item], links: Iterable[Sequence[str]]) -> int:
    """Union the patient groups in each link; every item takes its union's smallest name.

    Returns how many groups disappeared.
    """
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for link in links:
        roots = sorted(find(p) for p in link)
        for other in roots[1:]:
            parent[other] = roots[0]
    before = len({i.patient for i in items})
    for item in items:
        item.patient = find(item.patient)
    return before - len({i.patient for i in items})


# ---------------------------------------------------------------- perceptual hashes


def phash_items(items: Sequence[Item]) -> list[Item]:
    """Perceptual hash (imagehash.phash, 64 bits) of each image; unreadable images are returned."""
    import imagehash
    from PIL import Image

    bad = []
    for item in items:
        try:
            with Image.open(item.path) as image:
                item.phash = int(str(imagehash.phash(image)), 16)
        except (OSError, ValueError, SyntaxError):
            bad.append(item)
    return bad


def hamming_pairs(a: Sequence[int], b: Sequence[int] | None, limit: int) -> list[tuple]:
    """(i, j, distance) for hashes within `limit` bits: within `a` (i < j) or between a and b."""
    import numpy as np

    left = np.array(a, dtype=np.uint64)
    right = left if b is None else np.array(b, dtype=np.uint64)
    pairs = []
    for i, value in enumerate(left):
        dist = np.bitwise_count(right ^ value)
        hits = np.nonzero(dist <= limit)[0]
        pairs.extend((i, int(j), int(dist[j])) for j in hits if b is not None or j > i)
    return pairs


def near_duplicates(items: Sequence[Item]) -> list[tuple[Item, Item, int]]:
    """Pairs of distinct files whose phash differs by at most PHASH_MAX_DISTANCE bits."""
    hashed = [i for i in items if i.phash is not None]
    pairs = hamming_pairs([i.phash for i in hashed], None, PHASH_MAX_DISTANCE)
    return [(hashed[i], hashed[j], d) for i, j, d in pairs]


def near_duplicate_report(pairs: Sequence[tuple[Item, Item, int]], grouped: bool) -> dict:
    """How many near-duplicate pairs, and how many cross a label, a patient or a fold."""
    examples = sorted((d, a.rel, b.rel, a.fold, b.fold) for a, b, d in pairs)
    return {
        "max_distance": PHASH_MAX_DISTANCE,
        "pairs": len(pairs),
        "pairs_cross_label": sum(a.label != b.label for a, b, _ in pairs),
        "pairs_cross_patient": sum(a.patient != b.patient for a, b, _ in pairs),
        "pairs_cross_fold": sum(a.fold != b.fold for a, b, _ in pairs),
        "files_involved": len({x.rel for a, b, _ in pairs for x in (a, b)}),
        "grouped_before_folds": grouped,
        "examples": [
            {"distance": d, "a": a, "b": b, "fold_a": fa, "fold_b": fb}
            for d, a, b, fa, fb in examples[:EXAMPLES]
        ],
    }


# ---------------------------------------------------------------- reference exclusion


def read_manifest(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def exclude_reference(items: Sequence[Item], manifests: Sequence[Path]) -> tuple[list[Item], dict]:
    """Drop items whose bytes (SHA-256) or phash (<= PHASH_MAX_DISTANCE) match a file of the
    given manifests, so a transfer set shares no image with the benchmark it is used with."""
    import imagehash
    from PIL import Image

    ref_sha, ref_hash, ref_names = set(), [], []
    for manifest in manifests:
        for row in read_manifest(manifest):
            for modality in MODALITIES:
                cell = row.get(modality, "")
                if not cell:
                    continue
                ref_sha.add(row.get(f"sha256_{modality}") or file_sha256(manifest.parent / cell))
                if Path(cell).suffix.lower() in IMAGE_SUFFIXES:
                    with Image.open(manifest.parent / cell) as image:
                        ref_hash.append(int(str(imagehash.phash(image)), 16))
                    ref_names.append(f"{manifest.parent.name}/{cell}")
    by_sha = [i for i in items if i.sha256 in ref_sha]
    rest = [i for i in items if i.sha256 not in ref_sha]
    hashed = [i for i in rest if i.phash is not None]
    close: dict[str, tuple[int, str]] = {}
    if ref_hash:
        for i, j, d in hamming_pairs([i.phash for i in hashed], ref_hash, PHASH_MAX_DISTANCE):
            rel = hashed[i].rel
            close[rel] = min(close.get(rel, (99, "")), (d, ref_names[j]))
    kept = [i for i in rest if i.rel not in close]
    dropped = [i for i in rest if i.rel in close]
    stats = {
        "reference_manifests": [f"{m.parent.name}/{m.name}" for m in manifests],
        "reference_files": len(ref_names) or len(ref_sha),
        "excluded_sha256": len(by_sha),
        "excluded_phash": len(dropped),
        "excluded_by_label": dict(sorted(Counter(i.label for i in by_sha + dropped).items())),
        "examples_sha256": sorted(i.rel for i in by_sha)[:EXAMPLES],
        "examples_phash": [
            {"file": i.rel, "distance": close[i.rel][0], "reference": close[i.rel][1]}
            for i in sorted(dropped, key=lambda i: i.rel)[:EXAMPLES]
        ],
    }
    return kept, stats


# ---------------------------------------------------------------- folds, names, output


def assign_folds(items: Sequence[Item], folds: int = N_FOLDS, seed: int = FOLD_SEED) -> None:
    """StratifiedGroupKFold by label and patient: a patient's files share one fold."""
    from sklearn.model_selection import StratifiedGroupKFold

    ordered = sorted(items, key=lambda i: i.rel)
    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    labels = [i.label for i in ordered]
    groups = [i.patient for i in ordered]
    for fold, (_, test) in enumerate(splitter.split(ordered, labels, groups)):
        for index in test:
            ordered[index].fold = fold


def name_outputs(items: Sequence[Item], modality: str) -> None:
    """`<modality>/<label>/<file name>`, with the SHA-256 prefix added where names collide;
    and one unique `patient_id` per row: the patient, suffixed `_f<k>` when it has k files."""
    used: set[str] = set()
    for item in sorted(items, key=lambda i: i.rel):
        name = safe_id(item.path.name)
        rel = f"{modality}/{item.label}/{name}"
        if rel.lower() in used:
            stem, suffix = Path(name).stem, Path(name).suffix
            rel = f"{modality}/{item.label}/{stem}_{item.sha256[:8]}{suffix}"
        used.add(rel.lower())
        item.out_rel = rel
    by_patient: dict[str, list[Item]] = defaultdict(list)
    for item in sorted(items, key=lambda i: i.rel):
        by_patient[item.patient].append(item)
    for patient, members in by_patient.items():
        for k, item in enumerate(members):
            item.patient_id = patient if len(members) == 1 else f"{patient}_f{k}"


def copy_outputs(items: Sequence[Item], out: Path, modalities: Sequence[str]) -> None:
    """Copy files into `out`, replacing whatever an earlier build left in the modality folders."""
    for modality in modalities:
        shutil.rmtree(out / modality, ignore_errors=True)
    for item in items:
        target = out / item.out_rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(item.path, target)


def write_csv(path: Path, columns: Sequence[str], rows: Iterable[dict]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(columns), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def write_manifest(out: Path, items: Sequence[Item], modality: str, source: Source) -> None:
    """One row per file: `patient_id` (unique per row), `label`, the modality's path, `fold`,
    `sha256_<modality>`, `source_patient` (the group the folds kept together), source, commit."""
    columns = [
        "patient_id",
        "label",
        modality,
        "fold",
        f"sha256_{modality}",
        "source_patient",
        "source",
        "commit",
    ]
    rows = [
        {
            "patient_id": i.patient_id,
            "label": i.label,
            modality: i.out_rel,
            "fold": i.fold,
            f"sha256_{modality}": i.sha256,
            "source_patient": i.patient,
            "source": source.repo,
            "commit": source.commit,
        }
        for i in sorted(items, key=lambda i: (i.label, i.patient_id))
    ]
    write_csv(out / "manifest.csv", columns, rows)


def write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


# ---------------------------------------------------------------- profiles


def _spread(values: Sequence[float]) -> dict:
    if not values:
        return {}
    return {
        "min": round(min(values), 3),
        "median": round(statistics.median(values), 3),
        "max": round(max(values), 3),
    }


def profile_per_class(items: Sequence[Item], describe: Callable[[list[Item]], dict]) -> dict:
    """Per class: file count, suffixes and sizes, plus what `describe` reads of its members."""
    per: dict[str, dict] = {}
    for label in sorted({i.label for i in items}):
        members = [i for i in items if i.label == label]
        per[label] = {
            "files": len(members),
            "suffix": dict(sorted(Counter(i.path.suffix.lower() for i in members).items())),
            "file_kib": _spread([i.path.stat().st_size / 1024 for i in members]),
            **describe(members),
        }
    return per


def image_profile(members: Sequence[Item]) -> dict:
    """PIL format, mode and image sizes of one class's files."""
    from PIL import Image

    formats, modes, sizes, widths, heights = Counter(), Counter(), Counter(), [], []
    for item in members:
        with Image.open(item.path) as image:
            formats[image.format or "?"] += 1
            modes[image.mode] += 1
            sizes[f"{image.width}x{image.height}"] += 1
            widths.append(image.width)
            heights.append(image.height)
    return {
        "format": dict(sorted(formats.items())),
        "mode": dict(sorted(modes.items())),
        "width": _spread(widths),
        "height": _spread(heights),
        "distinct_sizes": len(sizes),
        "top_sizes": dict(sorted(sizes.most_common(5), key=lambda kv: (-kv[1], kv[0]))),
    }


def audio_profile(members: Sequence[Item]) -> dict:
    """Container, sample rate, channels and duration of one class's files (header reads)."""
    import soundfile

    rates, channels, formats, durations, bad = Counter(), Counter(), Counter(), [], 0
    for item in members:
        try:
            info = soundfile.info(str(item.path))
        except (RuntimeError, soundfile.LibsndfileError):
            bad += 1
            continue
        rates[str(info.samplerate)] += 1
        channels[str(info.channels)] += 1
        formats[info.format] += 1
        durations.append(info.duration)
    return {
        "unreadable": bad,
        "format": dict(sorted(formats.items())),
        "sample_rate": dict(sorted(rates.items(), key=lambda kv: int(kv[0]))),
        "channels": dict(sorted(channels.items())),
        "duration_s": _spread(durations),
    }


def fold_table(items: Sequence[Item]) -> dict:
    """{fold: {label: files}} plus patients per fold."""
    table: dict[str, dict] = {}
    for fold in sorted({i.fold for i in items}):
        members = [i for i in items if i.fold == fold]
        table[str(fold)] = {
            "files": dict(sorted(Counter(i.label for i in members).items())),
            "patients": len({i.patient for i in members}),
        }
    return table


def labels_of_patient(items: Sequence[Item]) -> dict[str, set[str]]:
    found: dict[str, set[str]] = defaultdict(set)
    for item in items:
        found[item.patient].add(item.label)
    return found


def environment() -> dict:
    """Versions that decide the folds and hashes: a different sklearn may shuffle differently."""
    from importlib.metadata import PackageNotFoundError, version

    found = {"python": platform.python_version()}
    for name in ("numpy", "scikit-learn", "pillow", "imagehash", "soundfile"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "absent"
    return found


# ---------------------------------------------------------------- the pipeline


def build_benchmark(
    *,
    name: str,
    modality: str,
    items: list[Item],
    out: Path,
    source: Source,
    license_text: str,
    extra: dict | None = None,
    absent: Sequence[str] = (),
    exclude: Sequence[Path] = (),
    group_near_duplicates: bool = False,
    describe_kept: Callable[[list[Item]], dict] | None = None,
) -> dict:
    """Hash, de-duplicate, (exclude), profile, fold, copy and write one single-modality build.

    `describe_kept` adds report entries computed from the files that made it into the build.
    Returns the report it wrote to `out/build_report.json`.
    """
    out.mkdir(parents=True, exist_ok=True)
    is_image = modality in ("ct", "cxr")
    hash_items(items)
    unreadable: list[Item] = []
    if is_image:
        unreadable = phash_items(items)
        items = [i for i in items if i not in unreadable]
    excluded = None
    if exclude:
        items, excluded = exclude_reference(items, exclude)
    counts_before = dict(sorted(Counter(i.label for i in items).items()))
    items, identical, cross_patient = remove_identical(items)
    patients_before = len({i.patient for i in items})
    identical["patient_groups_merged"] = merge_groups(items, cross_patient)
    pairs = near_duplicates(items) if is_image else []
    merged_near = 0
    if group_near_duplicates:
        merged_near = merge_groups(items, [(a.patient, b.patient) for a, b, _ in pairs])
    groups = len({i.patient for i in items})
    if groups < N_FOLDS:
        raise SystemExit(
            f"error: {name}: {len(items)} files of {groups} patients left after exclusion and "
            f"de-duplication: too few for {N_FOLDS} patient-grouped folds"
        )
    assign_folds(items)
    name_outputs(items, modality)
    copy_outputs(items, out, [modality])
    write_manifest(out, items, modality, source)
    (out / "LICENSE-SOURCE.md").write_text(license_text.rstrip() + "\n", encoding="utf-8")
    patients = defaultdict(set)
    for item in items:
        patients[item.label].add(item.patient)
    report = {
        "benchmark": name,
        "modality": modality,
        "source": {"repo": source.repo, "commit": source.commit, "url": source.url},
        "source_note": source.note,
        "files_absent_from_snapshot": {"count": len(absent), "files": list(absent)},
        "unreadable_files": sorted(i.rel for i in unreadable),
        "files_per_class_before_dedup": counts_before,
        "files_per_class": dict(sorted(Counter(i.label for i in items).items())),
        "files": len(items),
        "patients": len({i.patient for i in items}),
        "patients_before_merging": patients_before,
        "patients_per_class": {k: len(v) for k, v in sorted(patients.items())},
        "patients_in_more_than_one_class": sum(
            len(labels) > 1 for labels in labels_of_patient(items).values()
        ),
        "identical_files": identical,
        "near_duplicates_phash": (
            near_duplicate_report(pairs, group_near_duplicates)
            if is_image
            else "not computed (audio)"
        ),
        "near_duplicate_patient_groups_merged": merged_near,
        "folds": {"n": N_FOLDS, "seed": FOLD_SEED, "method": "StratifiedGroupKFold(shuffle=True)"},
        "per_fold": fold_table(items),
        "profile_per_class": profile_per_class(items, image_profile if is_image else audio_profile),
        "environment": environment(),
    }
    if excluded is not None:
        report["excluded_as_in_reference"] = excluded
    report.update(extra or {})
    if describe_kept is not None:
        report.update(describe_kept(items))
    write_json(out / "build_report.json", report)
    return report


def build_from_arguments(args: argparse.Namespace, **options) -> dict:
    """`build_benchmark` into OUT with the builder's common options; prints its summary."""
    grouped = getattr(args, "group_near_duplicates", False)
    report = build_benchmark(out=args.out, group_near_duplicates=grouped, **options)
    print(summary(report))
    return report


def summary(report: dict) -> str:
    """A few lines for the terminal."""
    near = report.get("near_duplicates_phash")
    near_text = (
        f"{near['pairs']} pairs ({near['pairs_cross_fold']} across folds)"
        if isinstance(near, dict)
        else near
    )
    ident = report["identical_files"]
    return "\n".join(
        [
            f"{report['benchmark']}: {report['files']} files, {report['patients']} patients, "
            f"per class {report['files_per_class']}",
            f"  identical copies removed: {ident['same_label_copies_removed']} (same label), "
            f"{ident['cross_label_files_dropped']} dropped (labels disagree)",
            f"  near-duplicates (phash <= {PHASH_MAX_DISTANCE}): {near_text}",
            f"  absent from snapshot: {report['files_absent_from_snapshot']['count']}",
        ]
    )
