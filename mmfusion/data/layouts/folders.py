"""Where the files of each patient are: scanning a data folder and pairing modalities by stem.

Pairing happens inside one split and one class folder, so a split is fixed before any pairing
and a stem can never be paired with another patient's file or another class's label.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from mmfusion.data.layouts.patients import regex_patient_key
from mmfusion.errors import DataError

log = logging.getLogger(__name__)

IMAGE_EXTS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".dcm"})
AUDIO_EXTS = frozenset({".wav", ".flac", ".ogg", ".mp3"})
DATA_EXTS = IMAGE_EXTS | AUDIO_EXTS
KAGGLE_MODALITY_DIRS = {"ct": "CT", "cxr": "CXR", "cough": "Cough sound"}
KAGGLE_SPLIT_DIRS = {"train": "train", "val": "valid", "test": "test"}


@dataclass(frozen=True)
class Sample:
    """One patient (or one file of a patient): a label and one file per modality.

    `patient` is the key that must keep every file of a person in one split: the value of
    `data.patient_key` when set (several samples may share it), else None (each sample alone).
    """

    sample_id: str
    label: int
    files: Mapping[str, Path]
    patient: str | None = None


def patient_of(sample: Sample) -> str:
    """The unit splits and folds keep together: the patient key, else the stem."""
    return sample.patient if sample.patient is not None else sample.sample_id.rsplit("/", 1)[-1]


def agreed_classes(found: dict[Path, list[str]]) -> list[str]:
    """The class names that every folder of `found` ({folder: its class folders}) agrees on."""
    (first, names), *rest = found.items()
    for folder, other in rest:
        if other != names:
            raise DataError(f"class folders disagree: {folder} has {other}, {first} has {names}")
    if not names:
        raise DataError(f"no class folders in {first}")
    return names


def _list_dir(folder: Path, bad_folders: dict[str, str] | None = None) -> list[Path]:
    """Entries of a folder; an unreadable one raises, or is recorded when `bad_folders` is given."""
    try:
        return sorted(p for p in folder.iterdir() if not p.name.startswith("."))
    except OSError as err:
        reason = f"cannot read folder {folder}: {err.strerror or err}"
        if bad_folders is None:
            raise DataError(reason) from err
        bad_folders[str(folder)] = reason
        return []


def files_by_stem(folder: Path, bad_folders: dict[str, str] | None = None) -> dict[str, Path]:
    """{stem: file} of the data files in a folder; two files sharing a stem are refused."""
    files: dict[str, Path] = {}
    ignored = 0
    for path in _list_dir(folder, bad_folders):
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
    if not files and str(folder) not in (bad_folders or {}):
        raise DataError(f"empty class folder {folder}: no image or audio files")
    return files


def pair_by_key(
    by_modality: Mapping[str, Mapping[str, Path]], label: int, class_name: str
) -> tuple[list[Sample], list[str]]:
    """Samples for the keys present in every modality, and 'class/key (no m)' for the others."""
    samples, dropped = [], []
    for key in sorted(set().union(*(set(files) for files in by_modality.values()))):
        missing = [m for m, files in by_modality.items() if key not in files]
        if missing:
            dropped.append(f"{class_name}/{key} (no {'/'.join(missing)})")
        else:
            files = {m: by_modality[m][key] for m in by_modality}
            samples.append(Sample(f"{class_name}/{key}", label, files))
    return samples, dropped


def report_dropped(split: str, modalities: Sequence[str], dropped: Sequence[str]) -> None:
    if dropped:
        log.warning(
            "%s split: dropped %d patients not present in every modality of %s, e.g. %s",
            split,
            len(dropped),
            list(modalities),
            ", ".join(dropped[:3]),
        )


class SplitFolderLayout:
    """`<root>/<split>/<modality dir>/<class>/<stem>.<ext>`, the Kaggle CXR-CT-Cough layout.

    With `on_bad_file="skip"` an unreadable class folder is recorded in `bad_files` and read as
    empty (its patients then lack that modality and are dropped, counted); otherwise it raises.
    `unpaired[split]` lists the stems dropped by the last `samples(split, ...)` call.
    `patient_key` (a regex on the paths, see `layouts.patients`) names each sample's patient.
    """

    def __init__(
        self,
        root: str | Path,
        split_dirs: Mapping[str, str] = KAGGLE_SPLIT_DIRS,
        modality_dirs: Mapping[str, str] = KAGGLE_MODALITY_DIRS,
        on_bad_file: str = "raise",
        patient_key: str | None = None,
    ) -> None:
        self.root = Path(root).expanduser()
        self.split_dirs = dict(split_dirs)
        self.modality_dirs = dict(modality_dirs)
        self.on_bad_file = on_bad_file
        self.patient_key = regex_patient_key(patient_key)
        self.bad_files: dict[str, str] = {}
        self.unpaired: dict[str, list[str]] = {}

    @property
    def _bad_folders(self) -> dict[str, str] | None:
        return self.bad_files if self.on_bad_file == "skip" else None

    def prepare(self) -> None:
        """Fail early, with the option to fix, when the data root is not there."""
        if not self.root.is_dir():
            raise DataError(f"data root does not exist: {self.root} (set data.root=PATH)")

    def _folder(self, split: str, modality: str) -> Path:
        """The folder holding the class folders of one split and modality."""
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
        return agreed_classes(found)

    def _class_files(self, split: str, modality: str, class_name: str) -> dict[str, Path]:
        """{stem: file} of one split, modality and class."""
        return files_by_stem(self._folder(split, modality) / class_name, self._bad_folders)

    def samples(self, split: str, modalities: Sequence[str]) -> list[Sample]:
        """Patients of one split whose stem exists in every modality; the rest are reported."""
        classes = self.classes(modalities)
        samples: list[Sample] = []
        dropped: list[str] = []
        for label, name in enumerate(classes):
            by_modality = {m: self._class_files(split, m, name) for m in modalities}
            paired, unpaired = pair_by_key(by_modality, label, name)
            samples += paired
            dropped += unpaired
        self.unpaired[split] = dropped
        report_dropped(split, modalities, dropped)
        if not samples:
            raise DataError(f"no paired samples in split {split!r} under {self.root}")
        if self.patient_key:
            samples = [replace(s, patient=self.patient_key.of_files(s.files)) for s in samples]
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
        patient_key: str | None = None,
    ) -> None:
        from mmfusion.data.synthetic import SyntheticSpec

        kwargs = {} if finding_prob is None else {"finding_prob": dict(finding_prob)}
        self.spec = SyntheticSpec(
            per_class=dict(per_class), image_size=image_size, seed=seed, **kwargs
        )
        self.parent = Path(parent)
        super().__init__(self.parent / f"synthetic-{self.spec.key()}", patient_key=patient_key)

    def prepare(self) -> None:
        from mmfusion.data.synthetic import ensure_synthetic

        ensure_synthetic(self.parent, self.spec)
