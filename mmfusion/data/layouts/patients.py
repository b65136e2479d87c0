"""`data.patient_key`: which files belong to one person, so that splits and folds keep them
together (several CT slices of one patient, one study's images).

The key is either the name of a manifest column (e.g. `source_patient`) or a regular expression
searched in each file's path: its group named `patient`, else its first group, else the whole
match is the patient. A path it does not match is an error, never a patient of its own.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from mmfusion.errors import ConfigError, DataError

OPTION = "data.patient_key"


class PatientKey:
    """A regular expression on file paths that names the patient of each file."""

    def __init__(self, pattern: str) -> None:
        try:
            self.regex = re.compile(pattern)
        except re.error as err:
            raise ConfigError(f"{OPTION}={pattern!r} is not a regular expression: {err}") from err
        self.pattern = pattern

    def of_path(self, path: str | Path) -> str:
        match = self.regex.search(Path(path).as_posix())
        if match is None or not match.group(0):
            raise DataError(
                f"{OPTION}={self.pattern!r} does not match {path} (a regular expression "
                "searched in each file's path, or a manifest column)"
            )
        if "patient" in self.regex.groupindex:
            return match.group("patient")
        return match.group(1) if self.regex.groups else match.group(0)

    def of_files(self, files: Mapping[str, Path]) -> str:
        """One sample's patient: its files must agree (a disagreement is a mispairing)."""
        keys = {modality: self.of_path(path) for modality, path in files.items()}
        if len(set(keys.values())) > 1:
            raise DataError(
                f"{OPTION}={self.pattern!r} names different patients for the files of one "
                f"sample: {', '.join(f'{files[m]} -> {k}' for m, k in keys.items())}"
            )
        return next(iter(keys.values()))


def regex_patient_key(spec: str | None) -> PatientKey | None:
    """The regex key of `data.patient_key`, or None when it is unset."""
    return PatientKey(str(spec)) if spec not in (None, "") else None
