"""The dataset checker's findings, as one JSON-ready report.

Counts per split x class x modality, unpaired patients, patients (`data.patient_key`) with files
in more than one split, unreadable files, duplicates across splits (exact: SHA-256; near:
perceptual hash of the decoded image), image and audio statistics, label confounds (a file
property whose distribution differs between classes, fully or partly: `confounds`), and the
metadata-only classifier's accuracy against chance (`metadata_baseline`): what a network can
learn instead of the disease; and files shared with other data sets (`check.against`: `overlap`).
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from mmfusion.data.checker.confounds import find_confounds
from mmfusion.data.checker.inspect import inspect_file
from mmfusion.data.checker.metadata_baseline import fit_metadata_baseline, metadata_tables
from mmfusion.data.checker.overlap import check_against
from mmfusion.data.decoding.window import CTWindow
from mmfusion.data.layouts.splitting import SPLITS
from mmfusion.data.leakage import patients_across_splits
from mmfusion.errors import DataError, MmfusionError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CheckOptions:
    """Thresholds of the checker (config group `check`)."""

    phash_distance: int = 10
    min_audio_seconds: float = 0.5
    silence_dbfs: float = -60.0
    confound_min_files: int = 5
    confound_alpha: float = 0.01
    confound_partial: float = 0.2
    confound_strong: float = 0.5
    metadata_baseline: bool = True
    max_listed: int = 20
    workers: int = 1
    # other data sets (folders or manifest CSVs) that must share no file with this one
    against: tuple[str, ...] = ()


class Report:
    """Findings accumulate here; `errors` decides the exit status."""

    def __init__(self, max_listed: int) -> None:
        self.max_listed = max_listed
        self.findings: list[dict[str, Any]] = []
        self.sections: dict[str, Any] = {}

    def add(self, level: str, kind: str, message: str, items: Sequence[Any] = ()) -> None:
        self.findings.append(
            {
                "level": level,
                "kind": kind,
                "message": message,
                "count": len(items),
                "items": list(items)[: self.max_listed],
            }
        )

    @property
    def errors(self) -> int:
        return sum(f["level"] == "error" for f in self.findings)

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.sections,
            "findings": self.findings,
            "errors": self.errors,
            "warnings": sum(f["level"] == "warning" for f in self.findings),
        }


def _collect(layout, modalities: Sequence[str], report: Report) -> list[dict[str, Any]]:
    """One record per (split, class, modality, file), plus the counts table and unpaired ids."""
    classes = layout.classes(modalities)
    report.sections["classes"] = classes
    records, counts, unpaired, by_split = [], {}, {}, {}
    for split in SPLITS:
        counts[split] = {name: dict.fromkeys([*modalities, "paired"], 0) for name in classes}
        for modality in modalities:
            try:
                samples = layout.samples(split, [modality])
            except MmfusionError as err:
                report.add("error", "layout", str(err))
                continue
            by_split.setdefault(split, []).extend(samples)
            for sample in samples:
                name = classes[sample.label]
                counts[split][name][modality] += 1
                records.append(
                    {
                        "split": split,
                        "class": name,
                        "label": name,
                        "modality": modality,
                        "sample_id": sample.sample_id,
                        "path": sample.files[modality],
                    }
                )
        try:
            paired = layout.samples(split, modalities) if len(modalities) > 1 else []
        except MmfusionError as err:
            report.add("error", "layout", str(err))
            paired = []
        for sample in paired:
            counts[split][classes[sample.label]]["paired"] += 1
        if len(modalities) == 1:
            for name in classes:
                counts[split][name]["paired"] = counts[split][name][modalities[0]]
        unpaired[split] = list(getattr(layout, "unpaired", {}).get(split, []))
    report.sections["counts"] = counts
    report.sections["unpaired"] = unpaired
    dropped = sum(len(v) for v in unpaired.values())
    if dropped and len(modalities) > 1:
        items = [f"{s}: {i}" for s, ids in unpaired.items() for i in ids]
        report.add(
            "warning",
            "unpaired",
            f"{dropped} patients lack a file in some of {list(modalities)} and are not used",
            items,
        )
    for folder, reason in getattr(layout, "bad_files", {}).items():
        report.add("error", "unreadable", reason, [folder])
    _patients_across_splits(by_split, report)
    return records


def _patients_across_splits(by_split: dict[str, list], report: Report) -> None:
    """Patients (`data.patient_key`) with files in more than one split: leakage."""
    unique = {
        split: list({s.sample_id: s for s in samples}.values())
        for split, samples in by_split.items()
    }
    crossing = patients_across_splits(unique)
    report.sections["patients_across_splits"] = crossing
    if crossing:
        report.add(
            "error",
            "patient_leak",
            f"LEAKAGE: {len(crossing)} patient(s) (data.patient_key) have files in more than "
            "one split; let the layout split by patient (e.g. no split / fold column)",
            [f"{patient}: {'; '.join(places)}" for patient, places in crossing.items()],
        )


def _inspect(records: list[dict[str, Any]], window: CTWindow, options: CheckOptions) -> None:
    def one(record):
        ct_window = window if record["modality"] == "ct" else None
        return inspect_file(record["path"], ct_window, options.silence_dbfs)

    if options.workers > 1 and len(records) > 32:
        from joblib import Parallel, delayed

        facts = Parallel(n_jobs=options.workers, batch_size=16)(delayed(one)(r) for r in records)
    else:
        facts = [one(r) for r in records]
    for record, fact in zip(records, facts, strict=True):
        record |= fact
        record["path"] = str(record["path"])


def _where(record: dict[str, Any]) -> str:
    return f"{record['path']} ({record['split']}/{record['class']})"


def _exact_duplicates(records: list[dict[str, Any]], report: Report) -> None:
    groups: dict[str, list[dict]] = defaultdict(list)
    for record in records:
        if record.get("sha256"):
            groups[record["sha256"]].append(record)
    across, conflicting, within = [], [], []
    for group in groups.values():
        unique = {r["path"]: r for r in group}.values()  # one file listed for two modalities
        if len(unique) < 2:
            continue
        entry = [_where(r) for r in unique]
        if len({r["split"] for r in unique}) > 1:
            across.append(entry)
        elif len({r["class"] for r in unique}) > 1:
            conflicting.append(entry)
        else:
            within.append(entry)
    report.sections["exact_duplicates_across_splits"] = across
    findings = [
        (
            across,
            "error",
            "duplicate_exact",
            "LEAKAGE: {} file(s) occur byte-identical in more than one split",
        ),
        (
            conflicting,
            "warning",
            "duplicate_label_conflict",
            "{} file(s) occur byte-identical under different labels",
        ),
        (
            within,
            "warning",
            "duplicate_within_split",
            "{} file(s) occur byte-identical twice in one split (counted twice)",
        ),
    ]
    for groups, level, code, message in findings:
        if groups:
            report.add(level, code, message.format(len(groups)), [" == ".join(g) for g in groups])


def _near_duplicates(records: list[dict[str, Any]], report: Report, distance: int) -> None:
    """Pairs of images of one modality, in different splits, whose perceptual hashes are close
    but whose bytes differ (re-encoded, resized, recompressed copies)."""
    pairs = []
    by_modality = defaultdict(list)
    for record in records:
        if record.get("phash"):
            by_modality[record["modality"]].append(record)
    for group in by_modality.values():
        hashes = np.stack([np.frombuffer(bytes.fromhex(r["phash"]), np.uint64) for r in group])
        splits = np.array([SPLITS.index(r["split"]) for r in group])
        for i in range(len(group) - 1):
            bits = np.bitwise_count(hashes[i] ^ hashes[i + 1 :]).sum(axis=1)
            near = (bits <= distance) & (splits[i + 1 :] != splits[i])
            for j in np.flatnonzero(near):
                a, b = group[i], group[i + 1 + j]
                if a["sha256"] != b["sha256"]:
                    pairs.append(f"{_where(a)} ~ {_where(b)} (distance {bits[j]})")
    report.sections["near_duplicates_across_splits"] = pairs
    if pairs:
        report.add(
            "error",
            "duplicate_near",
            f"LEAKAGE: {len(pairs)} image pairs across splits are near-duplicates "
            f"(perceptual hash distance <= {distance}: re-encoded copies, neighbouring slices); "
            "data.near_duplicates=group keeps each cluster in one split, =drop keeps one file",
            pairs,
        )


def _confounds(records: list[dict[str, Any]], report: Report, options: CheckOptions) -> None:
    """File properties whose distribution differs between classes (`confounds`)."""
    found = find_confounds(
        records,
        options.confound_alpha,
        options.confound_partial,
        options.confound_strong,
        options.confound_min_files,
    )
    report.sections["confounds"] = found
    for confound in found:
        if confound["strength"] == "strong":
            report.add(
                "warning",
                "confound",
                f"LABEL CONFOUND {confound['message']}: a model can learn the file property "
                "instead of the disease; normalise it away or report results per source",
            )
        else:
            report.add(
                "warning", "confound_partial", f"partial label confound {confound['message']}"
            )


def _metadata_baseline(records: list[dict[str, Any]], report: Report) -> None:
    """Train a classifier on file metadata only; its validation accuracy against chance."""
    try:
        baseline = fit_metadata_baseline(metadata_tables(records))
    except DataError as err:
        report.add("warning", "metadata_baseline", f"metadata-only classifier not fitted: {err}")
        return
    report.sections["metadata_baseline"] = baseline.as_dict()
    score = baseline.scores.get("val")
    if score is not None and score.above_chance:
        report.add(
            "warning",
            "confound_metadata",
            f"LABEL CONFOUND {baseline.summary()[0]}: file properties alone predict the label",
        )


def _stats(records: list[dict[str, Any]], report: Report, options: CheckOptions) -> None:
    images: dict = defaultdict(dict)
    audio: dict = defaultdict(dict)
    for (modality, name), group in _grouped(records).items():
        pictures = [r for r in group if r.get("kind") == "image"]
        sounds = [r for r in group if r.get("kind") == "audio"]
        if pictures:
            widths = [r["width"] for r in pictures]
            heights = [r["height"] for r in pictures]
            images[modality][name] = {
                "files": len(pictures),
                "formats": dict(Counter(r["format"] for r in pictures)),
                "modes": dict(Counter(r["mode"] for r in pictures)),
                "width": [min(widths), int(np.median(widths)), max(widths)],
                "height": [min(heights), int(np.median(heights)), max(heights)],
                "distinct_sizes": len({(r["width"], r["height"]) for r in pictures}),
            }
        if sounds:
            durations = [r["duration"] for r in sounds]
            audio[modality][name] = {
                "files": len(sounds),
                "formats": dict(Counter(r["format"] for r in sounds)),
                "sample_rates": dict(Counter(r["sample_rate"] for r in sounds)),
                "channels": dict(Counter(r["channels"] for r in sounds)),
                "duration_s": [
                    round(min(durations), 2),
                    round(float(np.median(durations)), 2),
                    round(max(durations), 2),
                ],
            }
    report.sections["images"] = images
    report.sections["audio"] = audio
    sounds = [r for r in records if r.get("kind") == "audio"]
    short = [
        f"{_where(r)}: {r['duration']:.2f} s"
        for r in sounds
        if r["duration"] < options.min_audio_seconds
    ]
    silent = [f"{_where(r)}: peak {r['peak_dbfs']} dBFS" for r in sounds if r["silent"]]
    if short:
        report.add(
            "warning",
            "audio_short",
            f"{len(short)} recordings are shorter than {options.min_audio_seconds} s",
            short,
        )
    if silent:
        report.add(
            "warning",
            "audio_silent",
            f"{len(silent)} recordings are silent (peak below {options.silence_dbfs} dBFS)",
            silent,
        )


def _grouped(records: list[dict[str, Any]]) -> dict[tuple[str, str], list[dict]]:
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for record in records:
        groups[(record["modality"], record["class"])].append(record)
    return dict(sorted(groups.items()))


def _innermost(layout):
    """The layout under the near-duplicate and k-fold wrappers."""
    while "layout" in vars(layout):
        layout = layout.layout
    return layout


def audit(
    layout, modalities: Sequence[str], window: CTWindow | None, options: CheckOptions
) -> dict[str, Any]:
    """Check a dataset as `layout` reads it; the report's `errors` > 0 means unusable as is."""
    report = Report(options.max_listed)
    if hasattr(layout, "on_bad_file"):
        layout.on_bad_file = "skip"  # list unreadable folders instead of stopping at the first
    layout.prepare()
    report.sections["data"] = {
        "layout": type(_innermost(layout)).__name__,
        "root": str(getattr(layout, "root", "")),
        "modalities": list(modalities),
    }
    try:
        records = _collect(layout, modalities, report)
    except DataError as err:
        report.add("error", "layout", str(err))
        return report.as_dict()
    if getattr(layout, "policy", "report") != "report":
        report.sections["data"]["near_duplicates"] = {"policy": layout.policy, **layout.counts}
    log.info("inspecting %d files", len(records))
    _inspect(records, window or CTWindow(), options)
    unreadable = [f"{r['error']} ({r['split']}/{r['class']})" for r in records if r["error"]]
    if unreadable:
        report.add("error", "unreadable", f"{len(unreadable)} file(s) cannot be read", unreadable)
    readable = [r for r in records if not r["error"]]
    _exact_duplicates(readable, report)
    _near_duplicates(readable, report, options.phash_distance)
    if options.against:
        report.sections["overlap"] = check_against(
            readable,
            options.against,
            lambda others: _inspect(others, window or CTWindow(), options),
            options.phash_distance,
            report.add,
        )
    _stats(readable, report, options)
    _confounds(readable, report, options)
    if options.metadata_baseline:
        _metadata_baseline(readable, report)
    report.sections["files"] = len(records)
    return report.as_dict()
