"""The public dataset layouts, read as users download them.

- CXR-CT-Cough (Kaggle): already split, or unsplit and then split here, **by stem before
  pairing**, so one stem's CT, CXR and cough always land in the same split.
- Extensive COVID-19 X-Ray and CT Chest Images (Mendeley): CT and X-ray come from different
  people. Each modality is split on its own first; then, inside one split and class, the i-th CT
  (by file name) is paired with the i-th X-ray: a *pseudo-patient*. The label is that class for
  both files by construction, and is checked.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from functools import cache
from pathlib import Path

from mmfusion.data.layouts.folders import (
    KAGGLE_MODALITY_DIRS,
    KAGGLE_SPLIT_DIRS,
    Sample,
    SplitFolderLayout,
    agreed_classes,
    files_by_stem,
    report_dropped,
)
from mmfusion.data.layouts.patients import regex_patient_key
from mmfusion.data.layouts.splitting import assign_grouped_splits, assign_splits
from mmfusion.errors import ConfigError, DataError

log = logging.getLogger(__name__)
KAGGLE_FOLDERS = ("processed_dataset_split", "processed_dataset")
SEED_STUDY_SIZES = {"train": 400, "val": 50, "test": 50}


class CxrCtCoughLayout(SplitFolderLayout):
    """The Kaggle CXR-CT-Cough download, split (`<root>/{train,valid,test}/<modality>/<class>`) or
    unsplit (`<root>/<modality>/<class>`); `root` may also be the folder holding
    `processed_dataset_split` or `processed_dataset`.

    Unsplit data get a seeded split per class over the stems of *all* modality folders, so the
    split of a patient does not depend on which modalities a run uses.
    """

    def __init__(
        self,
        root: str | Path,
        split_dirs: Mapping[str, str] = KAGGLE_SPLIT_DIRS,
        modality_dirs: Mapping[str, str] = KAGGLE_MODALITY_DIRS,
        split_sizes: Mapping[str, float] = SEED_STUDY_SIZES,
        seed: int = 0,
        on_bad_file: str = "raise",
        patient_key: str | None = None,
    ) -> None:
        super().__init__(root, split_dirs, modality_dirs, on_bad_file, patient_key)
        self.split_sizes = dict(split_sizes)
        self.seed = seed
        self.presplit: bool | None = None

    def prepare(self) -> None:
        super().prepare()
        if self.presplit is not None:
            return
        for name in KAGGLE_FOLDERS:  # the folder of the download, as unzipped
            if not self._looks_split(self.root) and (self.root / name).is_dir():
                self.root = self.root / name
                break
        self.presplit = self._looks_split(self.root)
        if not self.presplit and not any(
            (self.root / d).is_dir() for d in self.modality_dirs.values()
        ):
            raise DataError(
                f"{self.root} holds neither {list(self.split_dirs.values())} nor "
                f"{list(self.modality_dirs.values())} folders (the CXR-CT-Cough layouts)"
            )
        if not self.presplit:
            log.info(
                "%s is unsplit: seeded stratified split by stem before pairing, %s per class, "
                "seed %d",
                self.root,
                self.split_sizes,
                self.seed,
            )

    def _looks_split(self, root: Path) -> bool:
        return all((root / d).is_dir() for d in self.split_dirs.values())

    def _folder(self, split: str, modality: str) -> Path:
        self.prepare()
        if self.presplit:
            return super()._folder(split, modality)
        if modality not in self.modality_dirs:
            raise DataError(f"layout has no modality {modality!r} (known: {self.modality_dirs})")
        folder = self.root / self.modality_dirs[modality]
        if not folder.is_dir():
            raise DataError(f"missing folder {folder}")
        return folder

    def _class_files(self, split: str, modality: str, class_name: str) -> dict[str, Path]:
        files = super()._class_files(split, modality, class_name)
        if self.presplit:
            return files
        assigned = self._assignment(class_name)
        return {stem: path for stem, path in files.items() if assigned.get(stem) == split}

    @cache  # noqa: B019 - one layout object per data module; the split must not change
    def _assignment(self, class_name: str) -> dict[str, str]:
        """{stem: split} over the stems of every modality folder present (with a patient key:
        each patient's stems together)."""
        stems: dict[str, Path] = {}
        for directory in self.modality_dirs.values():
            folder = self.root / directory / class_name
            if folder.is_dir():
                stems = files_by_stem(folder, self._bad_folders) | stems
        ids = {class_name: sorted(stems)}
        if self.patient_key:
            group_of = {stem: self.patient_key.of_path(path) for stem, path in stems.items()}
            return assign_grouped_splits(ids, group_of, self.split_sizes, self.seed)[class_name]
        return assign_splits(ids, self.split_sizes, self.seed)[class_name]


class CovidXrayCtLayout:
    """Mendeley's `<root>/{CT,X-ray}/{COVID,Non-COVID}/<file>`: unpaired CT and X-ray, binary.

    Files of each modality are split on their own (seeded, stratified by class); pseudo-patients
    then pair the i-th CT and the i-th X-ray of one split and class in file-name order. Surplus
    files of the larger modality are dropped and counted.
    """

    def __init__(
        self,
        root: str | Path,
        modality_dirs: Mapping[str, str] | None = None,
        split_sizes: Mapping[str, float] | None = None,
        seed: int = 0,
        on_bad_file: str = "raise",
        patient_key: str | None = None,
    ) -> None:
        self.root = Path(root).expanduser()
        self.patient_key = regex_patient_key(patient_key)
        self.modality_dirs = dict(modality_dirs or {"ct": "CT", "cxr": "X-ray"})
        self.split_sizes = dict(split_sizes or {"train": 0.8, "val": 0.1, "test": 0.1})
        self.seed = seed
        self.on_bad_file = on_bad_file
        self.bad_files: dict[str, str] = {}
        self.unpaired: dict[str, list[str]] = {}
        self._announced = False

    def prepare(self) -> None:
        if not self.root.is_dir():
            raise DataError(f"data root does not exist: {self.root} (set data.root=PATH)")

    def _check_modalities(self, modalities: Sequence[str]) -> None:
        unknown = [m for m in modalities if m not in self.modality_dirs]
        if unknown:
            raise ConfigError(
                f"data=covid_xray_ct has no {'/'.join(unknown)} (it holds "
                f"{'/'.join(self.modality_dirs)}): use modality=ct_cxr, ct or cxr"
            )

    def classes(self, modalities: Sequence[str]) -> list[str]:
        self.prepare()
        self._check_modalities(modalities)
        found = {}
        for modality in modalities:
            folder = self.root / self.modality_dirs[modality]
            if not folder.is_dir():
                raise DataError(f"missing folder {folder}")
            found[folder] = sorted(p.name for p in folder.iterdir() if p.is_dir())
        return agreed_classes(found)

    @cache  # noqa: B019 - the split of a modality's files is fixed for the layout's lifetime
    def _split_files(self, modality: str, class_name: str) -> dict[str, list[Path]]:
        """{split: files in name order} for one modality and class, split before any pairing."""
        folder = self.root / self.modality_dirs[modality] / class_name
        bad = self.bad_files if self.on_bad_file == "skip" else None
        files = {p.name: p for p in files_by_stem(folder, bad).values()}
        if self.patient_key:  # a patient's images (e.g. CT slices) in one split
            group_of = {name: self.patient_key.of_path(path) for name, path in files.items()}
            assigned = assign_grouped_splits(
                {class_name: list(files)}, group_of, self.split_sizes, self.seed
            )
        else:
            assigned = assign_splits({class_name: list(files)}, self.split_sizes, self.seed)
        by_split: dict[str, list[Path]] = {"train": [], "val": [], "test": []}
        for name, split in sorted(assigned[class_name].items()):
            by_split[split].append(files[name])
        return by_split

    def samples(self, split: str, modalities: Sequence[str]) -> list[Sample]:
        classes = self.classes(modalities)
        if len(modalities) > 1 and not self._announced:
            log.warning(
                "data=covid_xray_ct: %s images come from different people; each pair is a "
                "pseudo-patient (i-th file of one modality with the i-th of the other, same "
                "split and class, in file-name order). Fusion results on it measure pairing of "
                "same-class images, not patients.",
                " and ".join(self.modality_dirs[m] for m in modalities),
            )
            self._announced = True
        samples, dropped = [], []
        for label, name in enumerate(classes):
            lists = {m: self._split_files(m, name)[split] for m in modalities}
            count = min(len(files) for files in lists.values())
            for files in lists.values():
                dropped += [f"{name}/{p.name} (no partner)" for p in files[count:]]
            for i in range(count):
                files = {m: lists[m][i] for m in modalities}
                if any(p.parent.name != name for p in files.values()):  # labels must agree
                    raise DataError(f"pseudo-patient labels disagree: {files} for class {name}")
                key = "+".join(p.stem for p in files.values())
                patient = None
                if self.patient_key:  # the pseudo-patient: its people, one per modality
                    patient = "+".join(self.patient_key.of_path(p) for p in files.values())
                samples.append(Sample(f"{name}/{key}", label, files, patient))
        self.unpaired[split] = dropped
        report_dropped(split, modalities, dropped)
        if not samples:
            raise DataError(f"no samples in split {split!r} under {self.root}")
        return samples
