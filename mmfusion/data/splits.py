"""The splits a run trains on, built the same way for training and for the checker: the
layout's own split (by patient), then the near-duplicate policy, then k-fold re-splitting."""

from __future__ import annotations

from pathlib import Path

from mmfusion.data.decoding.window import CTWindow
from mmfusion.data.layouts.folds import KFoldLayout
from mmfusion.data.near_duplicates import DEFAULT_DISTANCE, NearDuplicateLayout


def run_layout(
    layout,
    near_duplicates: str = "report",
    near_duplicate_distance: int = DEFAULT_DISTANCE,
    ct_window: CTWindow | None = None,
    cache_dir: str | Path | None = None,
    folds: int | None = None,
    fold: int | None = None,
):
    """`layout` wrapped by `data.near_duplicates` and, with `data.folds`, by k-fold."""
    wrapped = NearDuplicateLayout(
        layout, near_duplicates, near_duplicate_distance, ct_window, cache_dir
    )
    return KFoldLayout(wrapped, folds, fold) if folds else wrapped
