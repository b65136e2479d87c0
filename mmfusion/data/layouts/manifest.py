"""Truly paired clinical data listed in a CSV: one row per patient.

Columns: `patient_id`, `label`, optional `split` (train / val / test) or `fold` (0..K-1, for
cross-validation: `test_fold=i` tests on fold i, validates on `val_fold`, default i+1 mod K, and
trains on the rest), and one path column per modality (`ct`, `cxr`, `cough`), relative to the
CSV's folder. An empty cell means the patient
has no file of that modality: such a patient is dropped (and counted) from runs that use that
modality, and kept by runs that do not. Without a `split` column the rows are split here,
seeded and stratified by label: by `patient_id`, or by `patient_key` (a column such as
`source_patient`, or a regex on the paths) when rows are files of a person who has several.
Paths that leave the data root are refused unless allowed.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from mmfusion.data.layouts.folders import Sample, report_dropped
from mmfusion.data.layouts.patients import OPTION, PatientKey
from mmfusion.data.layouts.splitting import SPLITS, assign_grouped_splits, assign_splits
from mmfusion.errors import ConfigError, DataError

log = logging.getLogger(__name__)
MODALITY_COLUMNS = ("ct", "cxr", "cough")
SPLIT_NAMES = {"train": "train", "val": "val", "valid": "val", "validation": "val", "test": "test"}


def _natural(label: str) -> tuple:
    return (0, int(label), "") if label.isdigit() else (1, 0, label)


class ManifestLayout:
    """Samples from a manifest CSV; see the module docstring for its columns."""

    def __init__(
        self,
        path: str | Path,
        root: str | Path | None = None,
        split_sizes: Mapping[str, float] | None = None,
        seed: int = 0,
        allow_outside_root: bool = False,
        on_bad_file: str = "raise",
        test_fold: int | None = None,
        val_fold: int | None = None,
        patient_key: str | None = None,
    ) -> None:
        self.path = Path(path).expanduser()
        self.root = Path(root).expanduser() if root else self.path.parent
        self.split_sizes = dict(split_sizes or {"train": 0.8, "val": 0.1, "test": 0.1})
        self.seed = seed
        self.allow_outside_root = allow_outside_root
        self.on_bad_file = on_bad_file
        self.test_fold = test_fold
        self.val_fold = val_fold
        self.patient_key = patient_key or None
        self.patients: pd.Series | None = None  # the patient of each row, with a patient_key
        self.bad_files: dict[str, str] = {}
        self.unpaired: dict[str, list[str]] = {}
        self._table: pd.DataFrame | None = None

    def prepare(self) -> None:
        if not self.path.is_file():
            raise DataError(f"manifest does not exist: {self.path} (set data.manifest=PATH)")

    @property
    def table(self) -> pd.DataFrame:
        """The manifest, validated, with a resolved `split` column."""
        if self._table is None:
            self._table = self._read()
        return self._table

    def _read(self) -> pd.DataFrame:
        self.prepare()
        try:
            table = pd.read_csv(self.path, dtype=str, keep_default_na=False, skipinitialspace=True)
        except (OSError, ValueError, pd.errors.ParserError) as err:
            raise DataError(f"cannot read manifest {self.path}: {err}") from err
        table.columns = [c.strip() for c in table.columns]
        missing = [c for c in ("patient_id", "label") if c not in table.columns]
        if missing or not any(c in table.columns for c in MODALITY_COLUMNS):
            raise DataError(
                f"manifest {self.path} needs columns patient_id, label and at least one of "
                f"{', '.join(MODALITY_COLUMNS)} (found {list(table.columns)})"
            )
        table = table.apply(lambda column: column.str.strip())
        if (table["patient_id"] == "").any() or (table["label"] == "").any():
            row = int(((table["patient_id"] == "") | (table["label"] == "")).idxmax()) + 2
            raise DataError(f"manifest {self.path} line {row}: empty patient_id or label")
        repeated = table["patient_id"][table["patient_id"].duplicated()].unique()
        if len(repeated):
            raise DataError(
                f"manifest {self.path}: patient_id appears on more than one row: "
                f"{', '.join(repeated[:5])} (one row per patient; a patient in two splits leaks)"
            )
        self.patients = self._patients(table)
        table["split"] = self._splits(table)
        return table

    def _patients(self, table: pd.DataFrame) -> pd.Series | None:
        """The `patient_key` column, or the regex's patient of each row's files."""
        if self.patient_key is None:
            return None
        if self.patient_key in table.columns:
            values = table[self.patient_key]
            if (values == "").any():
                row = int((values == "").idxmax()) + 2
                raise DataError(f"manifest {self.path} line {row}: empty {self.patient_key}")
            return values
        key = PatientKey(self.patient_key)
        modalities = [c for c in MODALITY_COLUMNS if c in table.columns]
        return pd.Series(
            [
                key.of_files({m: Path(row[m]) for m in modalities if row[m]})
                if any(row[m] for m in modalities)
                else row["patient_id"]
                for row in table.to_dict("records")
            ],
            index=table.index,
        )

    def _splits(self, table: pd.DataFrame) -> pd.Series:
        if "fold" in table.columns and "split" not in table.columns:
            return self._fold_splits(table["fold"])
        if self.test_fold is not None:
            raise ConfigError(
                f"data.layout.test_fold={self.test_fold}: manifest {self.path} has no fold column"
            )
        if "split" in table.columns:
            unknown = sorted(set(table["split"].str.lower()) - set(SPLIT_NAMES))
            if unknown:
                raise DataError(
                    f"manifest {self.path}: unknown split value(s) {unknown} "
                    f"(use train / val / test; empty cells are not allowed in a split column)"
                )
            return table["split"].str.lower().map(SPLIT_NAMES)
        by_label = table.groupby("label")["patient_id"].apply(list).to_dict()
        if self.patients is None:
            assigned = assign_splits(by_label, self.split_sizes, self.seed)
        else:
            group_of = dict(zip(table["patient_id"], self.patients, strict=True))
            assigned = assign_grouped_splits(by_label, group_of, self.split_sizes, self.seed)
        log.info(
            "manifest %s has no split column: seeded split by %s, stratified by label, %s",
            self.path,
            "patient_id" if self.patients is None else f"{OPTION}={self.patient_key}",
            self.split_sizes,
        )
        return pd.Series(
            [
                assigned[label].get(pid)
                for label, pid in zip(table["label"], table["patient_id"], strict=True)
            ],
            index=table.index,
        )

    def _fold_splits(self, folds: pd.Series) -> pd.Series:
        """test = fold `test_fold`, val = fold `val_fold`, train = the other folds."""
        if not folds.str.fullmatch(r"\d+").all():
            row = int((~folds.str.fullmatch(r"\d+")).idxmax()) + 2
            raise DataError(f"manifest {self.path} line {row}: fold must be 0, 1, ...")
        numbers = folds.astype(int)
        count = int(numbers.max()) + 1
        if self.test_fold is None:
            raise ConfigError(
                f"manifest {self.path} has {count} folds: choose the test fold with "
                f"data.layout.test_fold=0..{count - 1} (all of them: -m "
                f"data.layout.test_fold=range(0,{count}))"
            )
        val_fold = (self.test_fold + 1) % count if self.val_fold is None else self.val_fold
        for name, fold in (("test_fold", self.test_fold), ("val_fold", val_fold)):
            if not 0 <= fold < count:
                raise ConfigError(
                    f"data.layout.{name}={fold}: the manifest has folds 0..{count - 1}"
                )
        if val_fold == self.test_fold:
            raise ConfigError(f"data.layout.val_fold={val_fold} is the test fold")
        splits = numbers.map(lambda f: "test" if f == self.test_fold else "train")
        splits[numbers == val_fold] = "val"
        log.info(
            "manifest %s: test fold %d, val fold %d of %d",
            self.path,
            self.test_fold,
            val_fold,
            count,
        )
        return splits

    def classes(self, modalities: Sequence[str]) -> list[str]:
        return sorted(self.table["label"].unique(), key=_natural)

    def _resolve(self, cell: str, patient: str, modality: str) -> Path:
        # lexical, not resolve(): symlinks the user placed inside the root are theirs to make
        path = Path(os.path.normpath(self.path.parent.absolute() / cell))
        root = Path(os.path.normpath(self.root.absolute()))
        if not self.allow_outside_root and not path.is_relative_to(root):
            raise DataError(
                f"manifest {self.path}: patient {patient} {modality} path {cell!r} is outside "
                f"the data root {root} (set data.layout.allow_outside_root=true to allow it)"
            )
        return path

    def samples(self, split: str, modalities: Sequence[str]) -> list[Sample]:
        if split not in SPLITS:
            raise ConfigError(f"unknown split {split!r}")
        absent = [m for m in modalities if m not in self.table.columns]
        if absent:
            raise DataError(
                f"manifest {self.path} has no {'/'.join(absent)} column for modality "
                f"{list(modalities)}"
            )
        classes = self.classes(modalities)
        rows = self.table[self.table["split"] == split]
        samples, dropped = [], []
        for row in rows.itertuples():
            patient, cells = row.patient_id, {m: getattr(row, m) for m in modalities}
            missing = [m for m, cell in cells.items() if not cell]
            if missing:
                dropped.append(f"{row.label}/{patient} (no {'/'.join(missing)})")
                continue
            files = {m: self._resolve(cell, patient, m) for m, cell in cells.items()}
            person = None if self.patients is None else str(self.patients[row.Index])
            samples.append(Sample(str(patient), classes.index(row.label), files, person))
        self.unpaired[split] = dropped
        report_dropped(split, modalities, dropped)
        if not samples:
            raise DataError(f"manifest {self.path}: no patient with {list(modalities)} in {split}")
        return samples
