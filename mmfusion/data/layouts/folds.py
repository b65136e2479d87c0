"""k-fold cross-validation as a layout: train + valid re-split into folds, test untouched.

Folds are stratified by class and grouped by patient (`data.patient_key`, else the file stem:
`patient_of`), so one patient's files
never sit on both sides of a fold; they depend only on the pooled samples and a fixed seed, so
every run (any training seed, any modality subset of the same patients) sees the same folds.
"""

from __future__ import annotations

from collections.abc import Sequence

from mmfusion.data.layouts.folders import Sample, patient_of
from mmfusion.data.layouts.wrapper import LayoutWrapper
from mmfusion.errors import ConfigError

__all__ = ["FOLD_SEED", "KFoldLayout", "patient_of"]
FOLD_SEED = 0


class KFoldLayout(LayoutWrapper):
    """Wraps a layout; its `train` / `val` are fold `fold` of `folds` of train + valid."""

    def __init__(self, layout, folds: int, fold: int | None, seed: int = FOLD_SEED) -> None:
        if not isinstance(folds, int) or folds < 2:
            raise ConfigError(f"data.folds={folds!r}: use an integer >= 2 (or null for no CV)")
        if not isinstance(fold, int) or not 0 <= fold < folds:
            raise ConfigError(f"data.fold={fold!r}: use an integer in [0, {folds - 1}]")
        super().__init__(layout)
        self.folds = folds
        self.fold = fold
        self.seed = seed

    def samples(self, split: str, modalities: Sequence[str]) -> list[Sample]:
        if split not in ("train", "val"):
            return self.layout.samples(split, modalities)
        from sklearn.model_selection import StratifiedGroupKFold

        pool = self.layout.samples("train", modalities) + self.layout.samples("val", modalities)
        splitter = StratifiedGroupKFold(self.folds, shuffle=True, random_state=self.seed)
        try:
            train_idx, val_idx = list(
                splitter.split(pool, [s.label for s in pool], groups=[patient_of(s) for s in pool])
            )[self.fold]
        except ValueError as err:
            raise ConfigError(f"data.folds={self.folds}: {err}") from err
        return [pool[i] for i in (train_idx if split == "train" else val_idx)]
