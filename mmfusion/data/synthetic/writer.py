"""Writing a data set to disk in the Kaggle layout, once, atomically, and where each finding is."""

from __future__ import annotations

import csv
import io
import itertools
import json
import logging
import math
import os
import shutil
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import soundfile as sf
from filelock import FileLock
from PIL import Image

from mmfusion.data.synthetic.ceilings import ceilings, empirical_ceilings
from mmfusion.data.synthetic.cough import render_cough
from mmfusion.data.synthetic.ct import render_ct
from mmfusion.data.synthetic.cxr import render_cxr
from mmfusion.data.synthetic.spec import (
    CLASSES,
    FILE_EXTS,
    GENERATOR_VERSION,
    HEALTHY,
    MODALITIES,
    MODALITY_DIRS,
    SPLIT_DIRS,
    SyntheticSpec,
)

log = logging.getLogger("mmfusion.data.synthetic")

_Task = tuple[int, int, int, int]  # split index, class index, index within split, global number


def _stem(class_idx: int, number: int) -> str:
    return f"{CLASSES[class_idx]}{number}"


def _tasks(spec: SyntheticSpec) -> list[_Task]:
    """All patients; stems are numbered per class across splits so each stem is globally unique."""
    tasks: list[_Task] = []
    for c in range(len(CLASSES)):
        number = 0
        for s, split in enumerate(SPLIT_DIRS):
            for i in range(spec.per_class[split]):
                number += 1
                tasks.append((s, c, i, number))
    return sorted(tasks)


def _patient_streams(spec: SyntheticSpec, task: _Task) -> tuple[np.ndarray, list]:
    """The patient's finding draws (one per modality) and one seed per modality's rendering."""
    s, c, i, _ = task
    seq = np.random.SeedSequence([spec.seed, s, c, i])
    return np.random.default_rng(seq).random(len(MODALITIES)), seq.spawn(len(MODALITIES))


def _render_patient(root: Path, spec: SyntheticSpec, task: _Task) -> dict:
    s, c, _, number = task
    draw, children = _patient_streams(spec, task)
    label = CLASSES[c]
    row: dict = {"split": SPLIT_DIRS[s], "stem": _stem(c, number), "label": label}
    for k, (m, child) in enumerate(zip(MODALITIES, children, strict=True)):
        shown = label != HEALTHY and bool(draw[k] < spec.finding_prob[m])
        row[f"{m}_shown"] = int(shown)
        rng = np.random.default_rng(child)
        finding = label if shown else None
        path = root / row["split"] / MODALITY_DIRS[m] / label / f"{row['stem']}.{FILE_EXTS[m]}"
        if m in ("ct", "cxr"):
            render = render_ct if m == "ct" else render_cxr
            Image.fromarray(render(rng, spec.image_size, finding)).save(path, compress_level=1)
        else:
            wav = render_cough(rng, spec.sample_rate, finding)
            buf = io.BytesIO()  # one write() per file: much faster than soundfile's own I/O
            sf.write(buf, wav, spec.sample_rate, subtype="PCM_16", format="WAV")
            path.write_bytes(buf.getvalue())
    return row


def finding_region(spec: SyntheticSpec, split: str, stem: str, modality: str) -> np.ndarray:
    """Where the finding of one generated CT / CXR image lies (bool, image_size x image_size);
    all False when that image shows none.

    The image is rendered again with and without its finding from the same seeds; the finding has
    its own random stream, so the two differ exactly where the finding was drawn.
    """
    if modality not in ("ct", "cxr"):
        raise ValueError(f"finding regions exist for images only, not {modality!r}")
    task = next(
        (t for t in _tasks(spec) if SPLIT_DIRS[t[0]] == split and _stem(t[1], t[3]) == stem), None
    )
    if task is None:
        raise ValueError(f"no patient {stem!r} in the {split!r} split of this spec")
    k = MODALITIES.index(modality)
    draw, children = _patient_streams(spec, task)
    label = CLASSES[task[1]]
    if label == HEALTHY or draw[k] >= spec.finding_prob[modality]:
        return np.zeros((spec.image_size, spec.image_size), dtype=bool)
    render = render_ct if modality == "ct" else render_cxr
    shown = render(np.random.default_rng(children[k]), spec.image_size, label).astype(np.int16)
    hidden = render(np.random.default_rng(children[k]), spec.image_size, None).astype(np.int16)
    return np.abs(shown - hidden) > 4  # beyond the 8-bit rounding of a faint overlay


def _render_chunk(root: str, spec: SyntheticSpec, tasks: list[_Task]) -> list[dict]:
    return [_render_patient(Path(root), spec, t) for t in tasks]


def generate(root: Path, spec: SyntheticSpec, workers: int = 2) -> None:
    """Write the Kaggle-style layout plus ``ceilings.json``, ``findings.csv``, ``generator.json``.

    ``generator.json`` is written last, so its presence marks a complete dataset.  Output bytes
    depend only on ``spec``: every patient has its own seeded generator, whatever ``workers`` is.
    """
    root = Path(root)
    for split, mod, cls in itertools.product(SPLIT_DIRS, MODALITY_DIRS.values(), CLASSES):
        (root / split / mod / cls).mkdir(parents=True, exist_ok=True)
    tasks = _tasks(spec)
    if workers <= 1 or len(tasks) < 8:
        rows = _render_chunk(str(root), spec, tasks)
    else:
        # Contiguous chunks and ordered map keep findings.csv in task order for any worker count.
        size = math.ceil(len(tasks) / (workers * 8))
        chunks = [tasks[j : j + size] for j in range(0, len(tasks), size)]
        with ProcessPoolExecutor(max_workers=workers) as pool:
            parts = pool.map(_render_chunk, [str(root)] * len(chunks), [spec] * len(chunks), chunks)
            rows = [row for part in parts for row in part]

    columns = ["split", "stem", "label"] + [f"{m}_shown" for m in MODALITIES]
    with open(root / "findings.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)

    prior = {c: 1.0 / len(CLASSES) for c in CLASSES}
    report = {
        "theoretical": ceilings(spec.finding_prob, prior),
        "empirical": {
            split: empirical_ceilings([r for r in rows if r["split"] == split], spec.finding_prob)
            for split in SPLIT_DIRS
            if spec.per_class[split] > 0
        },
    }
    (root / "ceilings.json").write_text(json.dumps(report, indent=2) + "\n")
    meta = {"generator_version": GENERATOR_VERSION, "key": spec.key(), "spec": spec.to_dict()}
    (root / "generator.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")


def ensure_synthetic(parent: Path, spec: SyntheticSpec, workers: int = 2) -> Path:
    """Return ``parent/synthetic-<key>``, generating it on first use.

    Generation goes to a temporary sibling that is renamed into place, under a file lock, so
    concurrent processes (e.g. DDP ranks or sweep jobs) build it once and never see a partial one.
    """
    parent = Path(parent)
    target = parent / f"synthetic-{spec.key()}"
    if (target / "generator.json").is_file():
        return target
    parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(parent / f"synthetic-{spec.key()}.lock")):
        if (target / "generator.json").is_file():  # another process finished while we waited
            return target
        if target.exists():  # leftover from an interrupted run without the completion marker
            shutil.rmtree(target)
        tmp = Path(tempfile.mkdtemp(prefix=f".synthetic-{spec.key()}-", dir=parent))
        tmp.chmod(0o755)  # mkdtemp makes it private; the dataset should be shareable
        try:
            start = time.perf_counter()
            generate(tmp, spec, workers=workers)
            os.replace(tmp, target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        n = sum(spec.per_class.values()) * len(CLASSES)
        log.info(
            "generated synthetic dataset %s (%d patients) in %.1f s",
            target,
            n,
            time.perf_counter() - start,
        )
    return target
