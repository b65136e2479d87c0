"""Test-set statistics of the comparison report: metrics, bootstrap CIs, McNemar tests.

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
from scipy.stats import bootstrap, rankdata
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.multitest import multipletests

METRICS = ("acc", "f1", "auroc", "ece")
METRIC_TITLES = {"acc": "accuracy", "f1": "macro-F1", "auroc": "macro-AUROC", "ece": "ECE"}
# ECE: lower is better; the others: higher is better
LOWER_IS_BETTER = frozenset({"ece"})
ECE_BINS = 15  # torchmetrics' default, as logged by the runs


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
    """Percentile bootstrap CI over test patients of the replicate-mean metric.

    `probs` is (replicates, n, K): every replicate (seed / fold) predicted the same n patients,
    so a resample draws patients once and scores every replicate on them; the statistic is the
    mean over replicates. The interval is therefore the test-sampling uncertainty of the mean
    over seeds; the spread between seeds is reported separately as the std.
    """
    fn = METRIC_FUNCTIONS[metric]

    def statistic(index: np.ndarray, axis: int = -1) -> np.ndarray:
        index = np.asarray(index, dtype=int)  # (batch, n)
        resampled = probs[:, index]  # (replicates, batch, n, K)
        return fn(labels[index][None], resampled).mean(0)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN AUROC of a degenerate resample
        result = bootstrap(
            (np.arange(len(labels)),),
            statistic,
            n_resamples=n_resamples,
            confidence_level=confidence,
            method="percentile",
            vectorized=True,
            batch=200,
            rng=np.random.default_rng(seed),
        )
    # a resample that lacks a class has no AUROC; such resamples are left out of the percentiles
    # (on a test set of any real size there are none, and this equals scipy's own interval)
    distribution = result.bootstrap_distribution
    if not np.isfinite(distribution).any():
        return float("nan"), float("nan")
    tail = 100 * (1 - confidence) / 2
    low, high = np.nanpercentile(distribution, [tail, 100 - tail])
    return float(low), float(high)


def mcnemar_pvalue(correct_a: np.ndarray, correct_b: np.ndarray) -> tuple[float, int, int]:
    """Exact McNemar test of two classifiers on the same patients: (p, a-only, b-only)."""
    a_only = int((correct_a & ~correct_b).sum())
    b_only = int((~correct_a & correct_b).sum())
    table = [
        [int((correct_a & correct_b).sum()), a_only],
        [b_only, int((~correct_a & ~correct_b).sum())],
    ]
    return float(mcnemar(table, exact=True).pvalue), a_only, b_only


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
