"""k-fold cross-validation: folds by patient and class on train + valid, test untouched."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import folder_job, make_tree, mlflow_runs, run_ok
from mmfusion.data.layouts.folders import SplitFolderLayout
from mmfusion.data.layouts.folds import KFoldLayout, patient_of
from mmfusion.errors import ConfigError

MODALITIES = ["ct", "cxr"]


def test_folds_partition_train_and_valid_by_patient_and_keep_test(tmp_path):
    tree = make_tree(tmp_path / "tree", {"train": 6, "valid": 3, "test": 2}, ("a", "b", "c"))
    base = SplitFolderLayout(tree)
    pool = base.samples("train", MODALITIES) + base.samples("val", MODALITIES)
    seen_val = []
    for fold in range(3):
        layout = KFoldLayout(base, folds=3, fold=fold)
        train, val = layout.samples("train", MODALITIES), layout.samples("val", MODALITIES)
        assert not {patient_of(s) for s in train} & {patient_of(s) for s in val}
        assert sorted(s.sample_id for s in train + val) == sorted(s.sample_id for s in pool)
        assert {s.label for s in val} == {0, 1, 2}  # stratified: every class in every fold
        assert layout.samples("test", MODALITIES) == base.samples("test", MODALITIES)
        seen_val += [s.sample_id for s in val]
    assert sorted(seen_val) == sorted(s.sample_id for s in pool)


@pytest.mark.parametrize(("folds", "fold"), [(1, 0), (3, 3), (3, None)])
def test_bad_fold_options_name_the_option(tmp_path, folds, fold):
    with pytest.raises(ConfigError, match=r"data\.fold"):
        KFoldLayout(SplitFolderLayout(tmp_path), folds=folds, fold=fold)


@pytest.mark.slow
def test_two_fold_cv_experiment_runs_every_fold_and_reports_across_folds(tmp_path):
    tree = make_tree(tmp_path / "tree", per_split={"train": 4, "valid": 2, "test": 3})
    tiny = ["trainer.max_epochs=1", "data.decoding.image_size=16", "data.batch_size=4"]
    cv = ["experiment=kfold", "data.folds=2", "data.fold=0,1"]
    run_ok(folder_job(tree, *cv, *tiny, "data.decode_workers=1"), tmp_path)
    _, runs = mlflow_runs(tmp_path)
    folds = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert sorted(r.data.params["data/fold"] for r in folds) == ["0", "1"]
    assert all(r.data.params["data/folds"] == "2" for r in folds)
    for run in folds:  # 2 classes x (4 train + 2 valid) patients, split in halves; test kept
        assert int(run.data.tags["data.n_train"]) + int(run.data.tags["data.n_val"]) == 12
        assert run.data.tags["data.n_val"] == "6" and run.data.tags["data.n_test"] == "6"
    parent = next(r for r in runs if "mmfusion.sweep_dir" in r.data.tags)
    text = Path(parent.data.tags["mmfusion.sweep_dir"], "comparison", "comparison.md").read_text()
    assert "## Across folds" in text and "data/fold: 0, 1" in text
