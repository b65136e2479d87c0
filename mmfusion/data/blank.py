"""Inputs that decode to a constant array: silent recordings, blank images.

Training on them teaches nothing and usually means a recording or export went wrong, so the
data module names them in a warning (the checker lists short and silent recordings in full).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import numpy as np

from mmfusion.data.layouts.folders import Sample

log = logging.getLogger(__name__)


def report_blank(
    split: str, samples: Sequence[Sample], arrays: Mapping[str, np.ndarray]
) -> list[str]:
    """Paths whose decoded array is constant, logged as one warning."""
    blank = []
    for modality, array in arrays.items():
        flat = np.ptp(np.asarray(array).reshape(len(array), -1), axis=1) == 0
        blank += [str(samples[i].files[modality]) for i in np.flatnonzero(flat)]
    if blank:
        log.warning(
            "%s split: %d inputs are blank after decoding (silent recording or uniform image), "
            "e.g. %s; `python -m mmfusion.check` lists short and silent recordings",
            split,
            len(blank),
            ", ".join(blank[:3]),
        )
    return blank
