"""Patients of the real-data builders: every image of one patient lands in one group."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks" / "real"))

from build_cxr_transfer import patient_of


@pytest.mark.parametrize(
    ("stem", "patient"),
    [
        ("person447_virus_920", "kermany-person-447"),
        ("person447_bacteria_1930", "kermany-person-447"),
        ("person447_virus_921_1", "kermany-person-447"),  # a second view of one study
        ("IM-0115-0001", "kermany-IM-0115"),
        ("NORMAL2-IM-1427-0001-0002", "kermany-NORMAL2-IM-1427"),
    ],
)
def test_kermany_file_names_name_their_patient(stem, patient):
    assert patient_of(stem)[0] == patient


def test_an_unknown_name_is_its_own_patient_and_says_so():
    assert patient_of("scan_17") == ("file-scan_17", "own patient")
