"""The comparison's rules: the reference is chosen on validation, disjoint test sets are not
compared by a paired test, intervals hold for biased metrics and overlapping folds, and the
epochs early stopping selected are reported."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from mmfusion.evaluation.comparison import write_report
from mmfusion.evaluation.statistics import (
    bootstrap_ci,
    expected_calibration_error,
    mcnemar_pvalue,
    nadeau_bengio_interval,
    patient_signflip_pvalue,
)
from mmfusion.tracking.runs import RunRecord

CLASSES = ("a", "b")


def predictions(ids: list[str], accuracy: float, seed: int, patients=None) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    labels = np.arange(len(ids)) % 2
    right = rng.random(len(ids)) < accuracy
    preds = np.where(right, labels, 1 - labels)
    confidence = rng.uniform(0.6, 0.9, len(ids))
    frame = pd.DataFrame({"sample_id": ids, "label": labels, "pred": preds})
    frame["label_name"] = [CLASSES[k] for k in labels]
    frame["prob_a"] = np.where(preds == 0, confidence, 1 - confidence)
    frame["prob_b"] = 1 - frame["prob_a"]
    if patients is not None:
        frame["patient"] = patients
    return frame


def run(fusion: str, seed: int, frame: pd.DataFrame, val: list[float], **params) -> RunRecord:
    return RunRecord(
        run_id=f"{fusion}{seed}",
        name=f"{fusion}-{seed}",
        params={
            "seed": str(seed),
            "monitor": "val/acc",
            "monitor_mode": "max",
            "trainer/max_epochs": "10",
            "data/_target_": "mmfusion.data.datamodule.MultimodalDataModule",
            "fusion/_target_": fusion,
            **params,
        },
        tags={"fusion": fusion, "backbone": "cnn", "modality": "ct"},
        metrics={},
        predictions=frame,
        val_history=list(enumerate(val)),
    )


def report(tmp_path, records, **kwargs) -> tuple[pd.DataFrame, str]:
    path = write_report(records, [], tmp_path, n_resamples=200, **kwargs)
    return pd.read_csv(tmp_path / "comparison.csv"), path.read_text()


def test_the_reference_is_the_best_on_validation_not_on_test(tmp_path):
    ids = [f"p{i}" for i in range(80)]
    records = [  # "late" is better on test, "early" was better on validation
        run("late", s, predictions(ids, 0.95, s), [0.6, 0.7, 0.72, 0.7]) for s in (1, 2)
    ] + [run("early", s, predictions(ids, 0.75, 10 + s), [0.7, 0.8, 0.85, 0.8]) for s in (1, 2)]
    table, text = report(tmp_path, records)
    assert list(table["configuration"]) == ["fusion=early", "fusion=late"]
    assert table["verdict"][0] == "reference" and table["val_score"][0] == pytest.approx(0.85)
    assert "best on validation" in text or "best mean validation score" in text
    # the user can fix it instead
    table, _ = report(tmp_path, records, reference="late")
    assert table["verdict"][0] == "reference" and table["configuration"][0] == "fusion=late"


def test_epochs_selected_by_each_configurations_early_stopping_are_reported(tmp_path):
    ids = [f"p{i}" for i in range(40)]
    records = [
        run("early", 1, predictions(ids, 0.8, 1), [0.5, 0.7, 0.9, 0.8, 0.8]),  # stopped at 5
        run("late", 1, predictions(ids, 0.8, 2), [0.5 + 0.04 * e for e in range(10)]),  # ran out
    ]
    table, text = report(tmp_path, records)
    epochs = dict(zip(table["configuration"], table["epochs"], strict=True))
    assert epochs["fusion=early"] == "best 3 of 5 run (max 10; 1/1 stopped early)"
    assert epochs["fusion=late"] == "best 10 of 10 run (max 10; 0/1 stopped early)"
    assert "| epochs |" in text


def test_configurations_without_shared_test_patients_are_not_comparable(tmp_path):
    """Two test folds of one manifest: disjoint patients. No paired test applies."""
    first, second = [f"p{i}" for i in range(60)], [f"q{i}" for i in range(60)]
    records = [
        run("early", 1, predictions(first, 0.9, 1), [0.9], **{"data/layout/test_fold": "0"}),
        run("late", 1, predictions(second, 0.6, 2), [0.8], **{"data/layout/test_fold": "1"}),
    ]
    table, text = report(tmp_path, records)
    other = table.iloc[1]
    assert other["verdict"].startswith("not comparable: no shared test patients; unpaired: ")
    assert other["test"] == "Welch (unpaired)" and other["p"] < 0.01
    assert "Not comparable: no shared test patients with the reference:** fusion=late" in text
    # another data set altogether: no test at all
    records[1].params["data/_target_"] = "another.DataModule"
    table, _ = report(tmp_path, records)
    assert table["verdict"][1] == "not comparable: no shared test patients"
    assert np.isnan(table["p"][1])


def calibrated(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A classifier calibrated by construction: correct with probability = its confidence."""
    rng = np.random.default_rng(seed)
    confidence = rng.uniform(0.5, 1.0, n)
    labels = np.zeros(n, dtype=int)
    preds = np.where(rng.random(n) < confidence, 0, 1)
    probs = np.empty((n, 2))
    probs[np.arange(n), preds] = confidence
    probs[np.arange(n), 1 - preds] = 1 - confidence
    return labels, probs


@pytest.mark.parametrize("seed", [4, 10, 17])
def test_the_ece_interval_contains_the_estimate(seed):
    """ECE resampled is biased upwards: for these seeds the percentile interval lies above the
    estimate (e.g. seed 4: ECE 0.0199, percentile interval [0.0225, 0.0625])."""
    labels, probs = calibrated(600, seed)
    estimate = float(expected_calibration_error(labels, probs))
    low, high = bootstrap_ci(labels, probs[None], "ece", n_resamples=1000)
    assert 0 <= low <= estimate <= high
    low, high = bootstrap_ci(labels, probs[None], "acc", n_resamples=1000)
    assert low <= float((probs.argmax(1) == labels).mean()) <= high


def test_the_kfold_interval_uses_the_corrected_variance():
    scores, n_train, n_test = [0.80, 0.84, 0.78, 0.86, 0.82], 400, 100
    mean, low, high = nadeau_bengio_interval(scores, n_train, n_test)
    s2 = np.var(scores, ddof=1)
    half = stats.t.ppf(0.975, 4) * np.sqrt((1 / 5 + n_test / n_train) * s2)
    assert mean == pytest.approx(0.82) and (low, high) == pytest.approx((0.82 - half, 0.82 + half))
    plain = stats.t.interval(0.95, 4, loc=0.82, scale=stats.sem(scores))
    assert (high - low) / (plain[1] - plain[0]) == pytest.approx(np.sqrt(1 + 5 * 0.25))
    assert np.isnan(nadeau_bengio_interval([0.8], n_train, n_test)[1])


def test_the_kfold_report_section_cites_the_correction(tmp_path):
    ids = [f"p{i}" for i in range(40)]
    records = [
        run("early", 1, predictions(ids, 0.7 + 0.05 * f, f), [0.8], **{"data/fold": str(f)})
        for f in range(3)
    ]
    for record in records:
        record.tags |= {"data.n_train": "80", "data.n_test": "40"}
    _, text = report(tmp_path, records)
    assert "## Across folds" in text and "Nadeau and Bengio" in text


def fold_sweep(fusion: str, accuracy: float, val: float) -> list[RunRecord]:
    """A 5-fold sweep as `experiment=real_*` runs it: each fold tests its own 30 patients."""
    records = []
    for fold in range(5):
        ids = [f"f{fold}p{i}" for i in range(30)]
        frame = predictions(ids, accuracy, 100 * fold + len(fusion))
        record = run(fusion, 1, frame, [val], **{"data/layout/test_fold": str(fold)})
        record.tags |= {"data.n_train": "90", "data.n_test": "30"}
        records.append(record)
    return records


def test_a_kfold_sweep_is_reported_on_its_pooled_out_of_fold_predictions(tmp_path):
    """The folds share no test patient: the interval is over all 150 patients, each predicted
    once by the model that never saw it (the real-data sweeps failed here: no shared patient)."""
    table, text = report(tmp_path, fold_sweep("early", 0.8, 0.8))
    assert len(table) == 1 and table["verdict"][0] == "reference"
    assert "5 disjoint test folds per configuration, 150 patients pooled out-of-fold" in text
    assert "## Across folds" in text
    low, high = table["acc_ci_low"][0], table["acc_ci_high"][0]
    assert low < table["acc_mean"][0] < high and high - low < 0.2


def test_two_kfold_sweeps_on_the_same_folds_are_paired_on_the_pool(tmp_path):
    records = fold_sweep("early", 0.95, 0.9) + fold_sweep("late", 0.6, 0.7)
    table, _ = report(tmp_path, records)
    other = table.iloc[1]
    assert other["configuration"] == "fusion=late" and other["test"] == "McNemar (exact)"
    assert other["verdict"] == "significant" and other["p"] < 1e-6


def test_several_samples_of_one_patient_are_not_counted_as_independent(tmp_path):
    """5 patients x 20 slices: McNemar on slices says 'significant', the patients do not."""
    patients = [f"person{i // 20}" for i in range(100)]
    a = np.ones(100, bool)
    b = np.array([i // 20 >= 3 for i in range(100)])  # b wrong on every slice of 3 people
    assert mcnemar_pvalue(a, b)[0] < 1e-15
    p, a_only, b_only = patient_signflip_pvalue(a, b, patients)
    assert p > 0.2 and (a_only, b_only) == (60, 0)
    ids = [f"s{i}" for i in range(100)]
    truth = predictions(ids, 1.0, 0, patients)
    wrong = truth.copy()
    wrong.loc[~b, "pred"] = 1 - wrong.loc[~b, "label"]
    records = [run("early", 1, truth, [0.9]), run("late", 1, wrong, [0.8])]
    table, _ = report(tmp_path, records)
    assert table["test"][1] == "sign-flip over patients" and table["verdict"][1] == "n.s."
