"""Test-set statistics of the comparison report: metrics, bootstrap CIs (BCa; ECE: bias-shifted
percentile), paired tests (exact McNemar; per-patient sign-flip when a patient has several test
samples), the unpaired test for disjoint test sets, and the k-fold interval with Nadeau and
Bengio's corrected variance. Each choice is explained, with citations, in docs/statistics.md.

The metrics are vectorised over a leading batch of bootstrap resamples (and of replicate runs),
so that `scipy.stats.bootstrap` with `vectorized=True` costs seconds, not the minutes that a
per-resample sklearn / torchmetrics call would. They follow torchmetrics' definitions (what the
runs log as `test/*`), and `mmfusion.evaluation.comparison` checks that they reproduce the
logged values.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
from scipy.stats import bootstrap, rankdata, t, ttest_ind
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.multitest import multipletests

METRICS = ("acc", "f1", "auroc", "ece")
METRIC_TITLES = {"acc": "accuracy", "f1": "macro-F1", "auroc": "macro-AUROC", "ece": "ECE"}
# ECE: lower is better; the others: higher is better
LOWER_IS_BETTER = frozenset({"ece"})
ECE_BINS = 15  # torchmetrics' default, as logged by the runs
# BCa (Efron 1987) corrects the bias and skew of a resampled metric; ECE is biased upwards so
# strongly under resampling that BCa's correction overshoots (its interval can then lie below
# the estimate), so ECE's percentile interval is shifted by the bootstrap estimate of its bias
CI_METHODS = {"acc": "BCa", "f1": "BCa", "auroc": "BCa", "ece": "bias-shifted percentile"}


def accuracy(labels: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """Micro accuracy; labels (..., n), probs (..., n, K) -> (...)."""
    return (probs.argmax(-1) == labels).mean(-1)


def macro_f1(labels: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """Mean per-class F1 over classes present in labels or predictions (torchmetrics' macro)."""
    preds = probs.argmax(-1)
    scores, weights = [], []
    for k in range(probs.shape[-1]):
        tp = ((preds == k) & (labels == k)).sum(-1)
        fp = ((preds == k) & (labels != k)).sum(-1)
        fn = ((preds != k) & (labels == k)).sum(-1)
        denominator = 2 * tp + fp + fn
        scores.append(np.where(denominator > 0, 2 * tp / np.maximum(denominator, 1), 0.0))
        weights.append(denominator > 0)
    scores, weights = np.stack(scores), np.stack(weights)
    return (scores * weights).sum(0) / np.maximum(weights.sum(0), 1)


def macro_auroc(labels: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """Mean one-vs-rest AUROC (Mann-Whitney U from ranks) over classes with both outcomes."""
    labels = np.broadcast_to(labels, probs.shape[:-1])
    scores = []
    for k in range(probs.shape[-1]):
        positive = labels == k
        n_pos = positive.sum(-1)
        n_neg = positive.shape[-1] - n_pos
        ranks = rankdata(probs[..., k], axis=-1)
        u = (ranks * positive).sum(-1) - n_pos * (n_pos + 1) / 2
        with np.errstate(invalid="ignore", divide="ignore"):
            scores.append(np.where((n_pos > 0) & (n_neg > 0), u / (n_pos * n_neg), np.nan))
    return np.nanmean(np.stack(scores), axis=0)


def expected_calibration_error(
    labels: np.ndarray, probs: np.ndarray, n_bins: int = ECE_BINS
) -> np.ndarray:
    """L1 ECE over equal-width confidence bins (torchmetrics' binning: 1.0 gets its own bin)."""
    confidence = probs.max(-1)
    correct = probs.argmax(-1) == labels
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    bins = np.searchsorted(edges, confidence, side="right") - 1
    total = np.zeros(confidence.shape[:-1])
    for b in range(n_bins + 1):
        in_bin = bins == b
        total += np.abs((correct * in_bin).sum(-1) - (confidence * in_bin).sum(-1))
    return total / confidence.shape[-1]


METRIC_FUNCTIONS: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "acc": accuracy,
    "f1": macro_f1,
    "auroc": macro_auroc,
    "ece": expected_calibration_error,
}


def run_metrics(labels: np.ndarray, probs: np.ndarray) -> dict[str, float]:
    """The four report metrics of one run on its whole test set."""
    return {name: float(fn(labels, probs)) for name, fn in METRIC_FUNCTIONS.items()}


def bootstrap_ci(
    labels: np.ndarray,
    probs: np.ndarray,
    metric: str,
    n_resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Bootstrap CI over test patients of the replicate-mean metric (`CI_METHODS[metric]`).

    `probs` is (replicates, n, K): every replicate (seed / fold) predicted the same n patients,
    so a resample draws patients once and scores every replicate on them; the statistic is the
    mean over replicates. The interval is therefore the test-sampling uncertainty of the mean
    over seeds; the spread between seeds is reported separately as the std. Both methods
    contain the estimate in practice; BCa falls back to the percentile interval where it is
    undefined (a resampled metric that never varies).
    """
    fn = METRIC_FUNCTIONS[metric]

    def statistic(index: np.ndarray, axis: int = -1) -> np.ndarray:
        index = np.asarray(index, dtype=int)  # (batch, n)
        resampled = probs[:, index]  # (replicates, batch, n, K)
        return fn(labels[index][None], resampled).mean(0)

    method = "BCa" if CI_METHODS[metric] == "BCa" else "percentile"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN AUROC of a degenerate resample
        warnings.simplefilter("ignore", UserWarning)  # scipy: BCa undefined -> NaN, handled below
        result = bootstrap(
            (np.arange(len(labels)),),
            statistic,
            n_resamples=n_resamples,
            confidence_level=confidence,
            method=method,
            vectorized=True,
            batch=200,
            rng=np.random.default_rng(seed),
        )
        estimate = float(np.nanmean(fn(labels[None], probs)))
    distribution = result.bootstrap_distribution
    if not np.isfinite(distribution).any():
        return float("nan"), float("nan")
    low, high = (float(v) for v in result.confidence_interval)
    if method == "BCa" and np.all(np.isfinite([low, high])) and np.isfinite(distribution).all():
        return low, high
    # a resample that lacks a class has no AUROC; such resamples are left out of the percentiles
    tail = 100 * (1 - confidence) / 2
    low, high = np.nanpercentile(distribution, [tail, 100 - tail])
    if CI_METHODS[metric] == "bias-shifted percentile":
        bias = float(np.nanmean(distribution)) - estimate  # Efron & Tibshirani 1993, ch. 10
        low, high = max(low - bias, 0.0), high - bias  # an error cannot be negative
    return float(low), float(high)


def nadeau_bengio_interval(
    scores: Sequence[float], n_train: int, n_test: int, confidence: float = 0.95
) -> tuple[float, float, float]:
    """(mean, low, high) of a metric over cross-validation folds, with the corrected variance.

    Folds share most of their training data, so their scores are correlated and the plain
    t-interval over folds is too narrow. Nadeau & Bengio (2003) correct the variance of the
    mean from s^2 / J to (1 / J + n_test / n_train) * s^2 (the corrected resampled t-test;
    Bouckaert & Frank 2004 recommend it for k-fold CV), with J - 1 degrees of freedom.

    scores: one value per fold (per fold x seed run: J = len(scores)); n_train / n_test: the
    number of samples trained on / scored in one fold (for k-fold CV n_test / n_train is about
    1 / (k - 1)). Fewer than two scores give a NaN interval.
    """
    values = np.asarray(scores, dtype=float)
    mean = float(values.mean()) if len(values) else float("nan")
    if len(values) < 2:
        return mean, float("nan"), float("nan")
    if n_train <= 0 or n_test <= 0:
        raise ValueError(f"n_train={n_train}, n_test={n_test}: both must be positive")
    variance = (1 / len(values) + n_test / n_train) * values.var(ddof=1)
    half = t.ppf(0.5 + confidence / 2, len(values) - 1) * np.sqrt(variance)
    return mean, float(mean - half), float(mean + half)


def mcnemar_pvalue(correct_a: np.ndarray, correct_b: np.ndarray) -> tuple[float, int, int]:
    """Exact McNemar test of two classifiers on the same patients: (p, a-only, b-only)."""
    a_only = int((correct_a & ~correct_b).sum())
    b_only = int((~correct_a & correct_b).sum())
    table = [
        [int((correct_a & correct_b).sum()), a_only],
        [b_only, int((~correct_a & ~correct_b).sum())],
    ]
    return float(mcnemar(table, exact=True).pvalue), a_only, b_only


def patient_signflip_pvalue(
    correct_a: np.ndarray,
    correct_b: np.ndarray,
    patients: Sequence[str],
    n_resamples: int = 10000,
    seed: int = 0,
) -> tuple[float, int, int]:
    """Paired test of two classifiers on the same test samples, several per patient:
    (p, a-only, b-only).

    Samples of one patient are not independent, so McNemar's test (which counts samples) would
    overstate significance. Under the null hypothesis the two classifiers are exchangeable
    within a patient, so each patient's difference in correct samples is symmetric about 0: a
    two-sided sign-flip permutation test over patients (exact McNemar is its case of one sample
    per patient; cf. Durkalski et al. 2003 on clustered matched pairs).
    """
    diff = pd.Series(correct_a.astype(int) - correct_b.astype(int)).groupby(list(patients)).sum()
    d = diff.to_numpy(float)
    a_only = int((correct_a & ~correct_b).sum())
    b_only = int((~correct_a & correct_b).sum())
    d = d[d != 0]
    if not len(d):
        return 1.0, a_only, b_only
    rng = np.random.default_rng(seed)
    signs = rng.choice([-1.0, 1.0], size=(n_resamples, len(d)))
    observed = abs(d.sum())
    extreme = int((np.abs(signs @ d) >= observed - 1e-9).sum())
    return (extreme + 1) / (n_resamples + 1), a_only, b_only


def unpaired_pvalue(correct_a: np.ndarray, correct_b: np.ndarray) -> float:
    """Two configurations scored on different patients: Welch's t-test of their per-patient
    correctness (replicate means in [0, 1]), two-sided."""
    if len(correct_a) < 2 or len(correct_b) < 2:
        return float("nan")
    a, b = np.asarray(correct_a, float), np.asarray(correct_b, float)
    if a.var() == 0 and b.var() == 0:
        return 1.0 if a.mean() == b.mean() else 0.0
    return float(ttest_ind(a, b, equal_var=False).pvalue)


def combine_replicate_pvalues(pvalues: Sequence[float]) -> float:
    """One p-value from per-seed McNemar tests on the SAME patients.

    The per-seed tests share their patients, so they are dependent and Fisher's method (which
    assumes independence) would overstate significance. Twice the arithmetic mean of the p-values
    is a valid p-value under any dependence (Rüschendorf 1982; Vovk & Wang 2020); one test is
    returned as is.
    """
    pvalues = [p for p in pvalues if np.isfinite(p)]
    if not pvalues:
        return float("nan")
    if len(pvalues) == 1:
        return float(pvalues[0])
    return float(min(1.0, 2.0 * np.mean(pvalues)))


def holm_adjust(pvalues: Sequence[float]) -> list[float]:
    """Holm-adjusted p-values across the comparisons against the best configuration."""
    values = np.asarray(pvalues, dtype=float)
    adjusted = np.full_like(values, np.nan)
    finite = np.isfinite(values)
    if finite.any():
        adjusted[finite] = multipletests(values[finite], method="holm")[1]
    return adjusted.tolist()
