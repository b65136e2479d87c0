"""Decode each split once into an on-disk array per modality, reused by later epochs and runs.

The cache key covers every file's path, size and mtime plus the decoding parameters, so editing
a file or a parameter rebuilds the array; arrays are memory-mapped back, never decoded again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from filelock import FileLock

from mmfusion.data.decoding.spec import DecodingSpec
from mmfusion.data.layouts.folders import Sample
from mmfusion.errors import DataError

log = logging.getLogger(__name__)
CACHE_VERSION = 2


def _decode_one(decoding: DecodingSpec, modality: str, path: Path) -> np.ndarray | str:
    """The decoded array, or the reason it could not be decoded."""
    try:
        return decoding.decode(modality, path)
    except DataError as err:
        return str(err)


def cache_key(paths: Sequence[Path], decoding: DecodingSpec, modality: str) -> str:
    digest = hashlib.sha1()
    params = [CACHE_VERSION, modality, decoding.cache_params(modality)]
    digest.update(json.dumps(params, sort_keys=True).encode())
    for path in paths:
        try:
            stat = path.stat()
            digest.update(f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
        except OSError:
            digest.update(f"{path}|missing\n".encode())
    return digest.hexdigest()[:16]


def _decode_all(paths: Sequence[Path], decoding: DecodingSpec, modality: str, workers: int) -> list:
    if workers <= 1 or len(paths) < 64:
        return [_decode_one(decoding, modality, p) for p in paths]
    from joblib import Parallel, delayed

    return Parallel(n_jobs=workers, batch_size=32)(
        delayed(_decode_one)(decoding, modality, p) for p in paths
    )


def decoded_modality(
    paths: Sequence[Path],
    decoding: DecodingSpec,
    modality: str,
    cache_dir: Path,
    workers: int = 1,
) -> tuple[np.ndarray, dict[int, str]]:
    """(array of shape (N, size, size), {index: reason} for files that could not be decoded)."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    key = cache_key(paths, decoding, modality)
    array_path, bad_path = cache_dir / f"{key}.npy", cache_dir / f"{key}.bad.json"
    with FileLock(str(cache_dir / f"{key}.lock")):
        if not array_path.exists():
            log.info("decoding %d files into the cache %s", len(paths), array_path)
            results = _decode_all(paths, decoding, modality, workers)
            good = [r for r in results if isinstance(r, np.ndarray)]
            size = decoding[modality].size
            template = good[0] if good else np.zeros((size, size), np.uint8)
            array = np.stack(
                [r if isinstance(r, np.ndarray) else np.zeros_like(template) for r in results]
            )
            bad = {i: r for i, r in enumerate(results) if isinstance(r, str)}
            _atomic_write(bad_path, lambda f: f.write(json.dumps(bad).encode()))
            _atomic_write(array_path, lambda f: np.save(f, array))
    bad = {int(i): reason for i, reason in json.loads(bad_path.read_text()).items()}
    return np.load(array_path, mmap_mode="r"), bad


def _atomic_write(path: Path, write) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as handle:
        write(handle)
    os.replace(tmp, path)


def decoded_split(
    samples: Sequence[Sample], decoding: DecodingSpec, cache_dir: Path, workers: int = 1
) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Arrays per modality of `decoding` for the samples, and {file: reason} for every
    undecodable file."""
    arrays, bad_files = {}, {}
    for modality in decoding:
        paths = [s.files[modality] for s in samples]
        arrays[modality], bad = decoded_modality(paths, decoding, modality, cache_dir, workers)
        bad_files.update({str(paths[i]): reason for i, reason in bad.items()})
    return arrays, bad_files
