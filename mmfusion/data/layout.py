"""Where the files of each patient are: scanning a data folder and pairing modalities by stem.

Pairing happens inside one split and one class folder, so a split is fixed before any pairing
and a stem can never be paired with another patient's file or another class's label.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from mmfusion.errors import DataError

log = logging.getLogger(__name__)

IMAGE_EXTS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".dcm"})
AUDIO_EXTS = frozenset({".wav", ".flac", ".ogg", ".mp3"})
DATA_EXTS = IMAGE_EXTS | AUDIO_EXTS
KAGGLE_MODALITY_DIRS = {"ct": "CT", "cxr": "CXR", "cough": "Cough sound"}
KAGGLE_SPLIT_DIRS = {"train": "train", "val": "valid", "test": "test"}


@dataclass(frozen=True)
class Sample:
    """One patient: a label and one file per modality."""

    sample_id: str
    label: int
    files: Mapping[str, Path]


def _list_dir(folder: Path) -> list[Path]:
    try:
        return sorted(p for p in folder.iterdir() if not p.name.startswith("."))
    except OSError as err:
        raise DataError(f"cannot read folder {folder}: {err.strerror or err}") from err


def _files_by_stem(folder: Path) -> dict[str, Path]:
    files: dict[str, Path] = {}
    ignored = 0
    for path in _list_dir(folder):
        if path.is_dir() or path.suffix.lower() not in DATA_EXTS:
            ignored += 1
            continue
        if path.stem in files:
            raise DataError(
                f"ambiguous pairing in {folder}: {files[path.stem].name} and {path.name} "
                f"share the stem {path.stem!r}"
            )
        files[path.stem] = path
    if ignored:
        log.warning("%s: ignored %d entries that are not data files", folder, ignored)
    if not files:
        raise DataError(f"empty class folder {folder}: no image or audio files")
    return files


class SplitFolderLayout:
    """`<root>/<split>/<modality dir>/<class>/<stem>.<ext>`, the Kaggle CXR-CT-Cough layout."""

    def __init__(
        self,
        root: str | Path,
        split_dirs: Mapping[str, str] = KAGGLE_SPLIT_DIRS,
        modality_dirs: Mapping[str, str] = KAGGLE_MODALITY_DIRS,
    ) -> None:
        self.root = Path(root).expanduser()
        self.split_dirs = dict(split_dirs)
        self.modality_dirs = dict(modality_dirs)

    def prepare(self) -> None:
        """Fail early, with the option to fix, when the data root is not there."""
        if not self.root.is_dir():
            raise DataError(f"data root does not exist: {self.root} (set data.root=PATH)")

    def _folder(self, split: str, modality: str) -> Path:
        try:
            folder = self.root / self.split_dirs[split] / self.modality_dirs[modality]
        except KeyError as err:
            raise DataError(
                f"layout has no {err.args[0]!r} (known: split_dirs, modality_dirs of {self.root})"
            ) from err
        if not folder.is_dir():
            raise DataError(f"missing folder {folder}")
        return folder

    def classes(self, modalities: Sequence[str]) -> list[str]:
        """Class names from the folders; every split and modality must have the same ones."""
        self.prepare()
        found: dict[Path, list[str]] = {}
        for split in self.split_dirs:
            for modality in modalities:
                folder = self._folder(split, modality)
                found[folder] = [p.name for p in _list_dir(folder) if p.is_dir()]
        (first, names), *rest = found.items()
        for folder, other in rest:
            if other != names:
                raise DataError(
                    f"class folders disagree: {folder} has {other}, {first} has {names}"
                )
        if not names:
            raise DataError(f"no class folders in {first}")
        return names

    def samples(self, split: str, modalities: Sequence[str]) -> list[Sample]:
        """Patients of one split whose stem exists in every modality; the rest are reported."""
        classes = self.classes(modalities)
        samples: list[Sample] = []
        dropped: list[str] = []
        for label, name in enumerate(classes):
            by_modality = {m: _files_by_stem(self._folder(split, m) / name) for m in modalities}
            stems = set.union(*(set(files) for files in by_modality.values()))
            for stem in sorted(stems):
                if all(stem in files for files in by_modality.values()):
                    files = {m: by_modality[m][stem] for m in modalities}
                    samples.append(Sample(f"{name}/{stem}", label, files))
                else:
                    missing = [m for m in modalities if stem not in by_modality[m]]
                    dropped.append(f"{name}/{stem} (no {'/'.join(missing)})")
        if dropped:
            log.warning(
                "%s split: dropped %d stems not present in every modality of %s, e.g. %s",
                split,
                len(dropped),
                list(modalities),
                ", ".join(dropped[:3]),
            )
        if not samples:
            raise DataError(f"no paired samples in split {split!r} under {self.root}")
        return samples


class SyntheticLayout(SplitFolderLayout):
    """The embedded benchmark: generated once under `parent`, then read like real data."""

    def __init__(
        self,
        parent: str | Path,
        per_class: Mapping[str, int],
        image_size: int = 128,
        finding_prob: Mapping[str, float] | None = None,
        seed: int = 0,
    ) -> None:
        from mmfusion.data.synthetic import SyntheticSpec

        kwargs = {} if finding_prob is None else {"finding_prob": dict(finding_prob)}
        self.spec = SyntheticSpec(
            per_class=dict(per_class), image_size=image_size, seed=seed, **kwargs
        )
        self.parent = Path(parent)
        super().__init__(self.parent / f"synthetic-{self.spec.key()}")

    def prepare(self) -> None:
        from mmfusion.data.synthetic import ensure_synthetic

        ensure_synthetic(self.parent, self.spec)
