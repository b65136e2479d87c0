"""Which configuration is better, by how much, with what certainty.

Reads finished runs back from MLflow (a multirun's children, or a whole experiment), recomputes
accuracy, macro-F1, macro-AUROC and ECE from each run's `test_predictions.csv` (and checks them
against the logged `test/*` metrics), and writes a report: mean +- std over replicates (seeds,
CV folds), 95% bootstrap CIs over test patients, the validation score and epochs each run's
early stopping selected, paired tests of every configuration against the reference (the best on
validation, or one the user fixes; never chosen on test), the k-fold interval with Nadeau and
Bengio's correction, a bar chart, markdown + HTML. The report is logged to the parent MLflow run.
Each statistical choice is explained in docs/statistics.md.
"""

from __future__ import annotations

import json
import logging
import textwrap
import warnings
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

from mmfusion.errors import ConfigError, MmfusionError
from mmfusion.evaluation.markdown import markdown_table
from mmfusion.evaluation.statistics import (
    CI_METHODS,
    METRIC_FUNCTIONS,
    METRIC_TITLES,
    METRICS,
    bootstrap_ci,
    combine_replicate_pvalues,
    holm_adjust,
    mcnemar_pvalue,
    nadeau_bengio_interval,
    patient_signflip_pvalue,
    run_metrics,
    unpaired_pvalue,
)
from mmfusion.runtime.signals import deferred
from mmfusion.tracking.runs import (
    REPLICATE_KEYS,
    RunRecord,
    client_for,
    experiment_id,
    find_runs,
    label_configurations,
    load_records,
    parent_of_sweep_dir,
)

log = logging.getLogger(__name__)
ALPHA = 0.05
LOGGED_TOLERANCE = 1e-4  # the CSV stores float32 probabilities as text


NOT_COMPARABLE = "not comparable: no shared test patients"
# data params that say which data a run was tested on (fold / test-fold keys are replicates)
DATA_SOURCE_KEYS = ("data/_target_", "data/root", "data/manifest", "data/layout/_target_")


@dataclass
class ConfigResult:
    """One configuration: its replicate runs, their metrics and the CIs of the mean."""

    label: str
    runs: list[RunRecord]
    per_run: list[dict[str, float]]
    sample_ids: list[str]
    labels: np.ndarray
    probs: np.ndarray  # (replicates, patients, classes), rows aligned on sample_ids
    patients: list[str] | None = None  # the person of each sample (data.patient_key)
    ci: dict[str, tuple[float, float]] = field(default_factory=dict)
    test: dict[str, float | int | str] = field(default_factory=dict)

    def mean(self, metric: str) -> float:
        return float(np.mean([m[metric] for m in self.per_run]))

    def std(self, metric: str) -> float:
        values = [m[metric] for m in self.per_run]
        return float(np.std(values, ddof=1)) if len(values) > 1 else 0.0

    @property
    def val_score(self) -> float:
        """Mean over replicates of the validation score each run's checkpoint was chosen on."""
        best = [r.best_val[1] for r in self.runs if r.best_val is not None]
        return float(np.mean(best)) if best else float("nan")

    def epochs(self) -> str:
        """'best 6.5 of 11 run (max 30; 1/2 stopped early)': what early stopping selected."""
        runs = [r for r in self.runs if r.best_val is not None]
        if not runs:
            return "not logged"
        best = np.mean([r.best_val[0] + 1 for r in runs])
        ran = np.mean([len(r.val_history) for r in runs])
        limits = {r.max_epochs for r in runs} - {None}
        text = f"best {best:.3g} of {ran:.3g} run"
        if limits:
            stopped = sum(
                r.max_epochs is not None and len(r.val_history) < r.max_epochs for r in runs
            )
            text += (
                f" (max {'/'.join(map(str, sorted(limits)))}; {stopped}/{len(runs)} stopped early)"
            )
        return text

    def fold_interval(self, metric: str) -> tuple[float, float, float]:
        """Mean and 95% interval over the replicate runs with Nadeau & Bengio's corrected
        variance, n_train / n_test from each run's logged split sizes (NaN without them)."""
        scores = [m[metric] for m in self.per_run]
        sizes = [
            (int(r.tags["data.n_train"]), int(r.tags["data.n_test"]))
            for r in self.runs
            if "data.n_train" in r.tags and "data.n_test" in r.tags
        ]
        if not sizes:
            return float(np.mean(scores)), float("nan"), float("nan")
        n_train, n_test = np.mean(sizes, axis=0)
        return nadeau_bengio_interval(scores, float(n_train), float(n_test))

    @property
    def pooled(self) -> bool:
        """Replicates on disjoint test sets (folds), held as one out-of-fold replicate."""
        return len(self.runs) > 1 and self.probs.shape[0] == 1

    def tested(self, replicate: tuple[str, ...]) -> set[str]:
        """The test samples of one replicate run (a fold's run: that fold's patients only)."""
        run = next(r for r in self.runs if r.replicate == replicate)
        return set(run.predictions["sample_id"])

    def correct(self, replicate: tuple[str, ...], ids: Sequence[str]) -> np.ndarray:
        run = next(r for r in self.runs if r.replicate == replicate)
        frame = run.predictions.set_index("sample_id").loc[list(ids)]
        return frame["pred"].to_numpy() == frame["label"].to_numpy()

    def mean_correct(self) -> np.ndarray:
        """Per test sample, the share of replicates that classified it correctly."""
        return (self.probs.argmax(-1) == self.labels[None]).mean(0)


def _aligned(runs: Sequence[RunRecord]) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Patients every replicate predicted, their labels and the (R, n, K) probabilities."""
    ids = list(runs[0].predictions["sample_id"])
    common = set.intersection(*(set(r.predictions["sample_id"]) for r in runs))
    ids = [i for i in ids if i in common]
    classes = runs[0].class_names
    frames = [r.predictions.set_index("sample_id").loc[ids] for r in runs]
    labels = frames[0]["label"].to_numpy()
    for run, frame in zip(runs, frames, strict=True):
        if run.class_names != classes or not np.array_equal(frame["label"].to_numpy(), labels):
            raise MmfusionError(f"run {run.name} ({run.run_id}) disagrees on the test labels")
    probs = np.stack([f[[f"prob_{c}" for c in classes]].to_numpy(dtype=float) for f in frames])
    return ids, labels, probs


def _pooled(runs: Sequence[RunRecord]) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Replicates tested on disjoint patients (the folds of a k-fold sweep): every patient
    predicted once, by the model that never saw it (out-of-fold), as one (1, n, K) replicate."""
    classes = runs[0].class_names
    if any(r.class_names != classes for r in runs):
        raise MmfusionError(f"the folds of {runs[0].label} disagree on the classes")
    frame = pd.concat([r.predictions for r in runs], ignore_index=True)
    probs = frame[[f"prob_{c}" for c in classes]].to_numpy(dtype=float)[None]
    return list(frame["sample_id"]), frame["label"].to_numpy(), probs


def _disjoint(runs: Sequence[RunRecord]) -> bool:
    tested = [set(r.predictions["sample_id"]) for r in runs]
    return len(runs) > 1 and len(set().union(*tested)) == sum(map(len, tested))


def summarise(records: Sequence[RunRecord], n_resamples: int) -> list[ConfigResult]:
    """Per configuration: per-run metrics, mean, std and bootstrap CI (in no particular order:
    `order_by_validation` ranks them)."""
    groups: dict[str, list[RunRecord]] = defaultdict(list)
    for record in records:
        groups[record.label].append(record)
    results = []
    for label, runs in groups.items():
        runs = sorted(runs, key=lambda r: r.replicate)
        # each run on its whole test set, as logged; the CI on the patients all replicates share
        per_run = [
            run_metrics(*(a[0] if a.ndim == 3 else a for a in _aligned([r])[1:])) for r in runs
        ]
        # folds (disjoint test sets): pooled out-of-fold; seeds (one test set): aligned
        ids, labels, probs = _pooled(runs) if _disjoint(runs) else _aligned(runs)
        first = pd.concat([r.predictions for r in runs]).drop_duplicates("sample_id")
        first = first.set_index("sample_id")
        patients = list(first.loc[ids, "patient"].astype(str)) if "patient" in first else None
        result = ConfigResult(label, runs, per_run, ids, labels, probs, patients)
        result.ci = {m: bootstrap_ci(labels, probs, m, n_resamples) for m in METRIC_FUNCTIONS}
        results.append(result)
    return results


def order_by_validation(
    results: list[ConfigResult], reference: str | None = None
) -> list[ConfigResult]:
    """The reference first, then the others by validation score; never by a test result.

    The reference is the configuration named by `reference` (its exact label, or a part that
    names exactly one), else the one with the best mean validation score (the monitored metric
    at each run's selected checkpoint).
    """
    higher = results[0].runs[0].higher_is_better
    scored = [r for r in results if np.isfinite(r.val_score)]
    ranked = sorted(scored, key=lambda r: (-r.val_score if higher else r.val_score, r.label))
    ranked += sorted((r for r in results if r not in scored), key=lambda r: r.label)
    if reference is None:
        if not scored:
            raise ConfigError(
                "no run logged its validation metric, so no reference can be chosen on "
                "validation: name one with reference=LABEL (labels: "
                f"{', '.join(r.label for r in results)})"
            )
        return ranked
    named = [r for r in results if r.label == reference] or [
        r for r in results if reference in r.label
    ]
    if len(named) != 1:
        raise ConfigError(
            f"reference={reference!r} names {len(named)} configurations; use one of: "
            + ", ".join(r.label for r in results)
        )
    return [named[0], *(r for r in ranked if r is not named[0])]


def _same_data(a: ConfigResult, b: ConfigResult) -> bool:
    """Tested on the same data source (so an unpaired test compares like with like)."""
    params = a.runs[0].params, b.runs[0].params
    return all(params[0].get(k) == params[1].get(k) for k in DATA_SOURCE_KEYS)


def _paired(reference: ConfigResult, other: ConfigResult, ids: list[str]) -> dict:
    """Per shared replicate (same seed / fold): exact McNemar on the shared test samples, or the
    per-patient sign-flip test when a patient has several of them; combined."""
    shared = sorted({r.replicate for r in reference.runs} & {r.replicate for r in other.runs})
    person = (
        dict(zip(reference.sample_ids, reference.patients, strict=True))
        if reference.patients is not None
        else {i: i for i in ids}
    )
    # one sample per patient: McNemar is exact; several: the sign-flip test over patients
    by_patient = len({person[i] for i in ids}) < len(ids)
    outcomes = []  # per shared replicate: (reference correct, other correct, patients)
    for replicate in shared:
        # a fold's runs share that fold's patients; seed replicates share all of `ids`
        both = reference.tested(replicate) & other.tested(replicate)
        here = [i for i in ids if i in both]
        if here:
            a, b = reference.correct(replicate, here), other.correct(replicate, here)
            outcomes.append((a, b, [person[i] for i in here]))
    pairs = len(outcomes)
    if outcomes and reference.pooled and other.pooled:
        # folds test disjoint patients: one test on the pooled out-of-fold outcomes
        outcomes = [tuple(np.concatenate(part) for part in zip(*outcomes, strict=True))]
    pvalues, reference_only, other_only = [], 0, 0
    for a, b, patients in outcomes:
        if by_patient:
            p, x, y = patient_signflip_pvalue(a, b, list(patients))
        else:
            p, x, y = mcnemar_pvalue(a, b)
        pvalues.append(p)
        reference_only, other_only = reference_only + x, other_only + y
    return {
        "test": "sign-flip over patients" if by_patient else "McNemar (exact)",
        "pairs": pairs,
        "patients": len({person[i] for i in ids}),
        "p_per_replicate": pvalues,
        "p": combine_replicate_pvalues(pvalues),
        "reference_only_correct": reference_only,
        "other_only_correct": other_only,
    }


def test_against_reference(results: list[ConfigResult]) -> None:
    """Every configuration against the reference (`results[0]`): a paired test on the test
    patients they share; with none shared, 'not comparable' and an unpaired test where both
    were tested on the same data; Holm-adjusted across the comparisons."""
    reference, others = results[0], results[1:]
    reference.test = {"verdict": "reference"}
    raw = []
    for other in others:
        ids = [i for i in reference.sample_ids if i in set(other.sample_ids)]
        if ids:
            other.test = _paired(reference, other, ids)
        elif _same_data(reference, other):
            other.test = {
                "test": "Welch (unpaired)",
                "patients": 0,
                "p": unpaired_pvalue(reference.mean_correct(), other.mean_correct()),
                "not_comparable": True,
            }
        else:
            other.test = {"test": "none (different data)", "patients": 0, "p": float("nan")}
            other.test["not_comparable"] = True
        raw.append(other.test["p"])
    for other, adjusted in zip(others, holm_adjust(raw), strict=True):
        other.test["p_holm"] = adjusted
        if not np.isfinite(adjusted):
            verdict = NOT_COMPARABLE if other.test.get("not_comparable") else "no shared seed"
        else:
            verdict = "significant" if adjusted < ALPHA else "n.s."
            if other.test.get("not_comparable"):
                verdict = f"{NOT_COMPARABLE}; unpaired: {verdict}"
        other.test["verdict"] = verdict


def logged_mismatches(results: Sequence[ConfigResult]) -> tuple[int, float, list[str]]:
    """Compare recomputed metrics with the logged `test/<metric>`: (checked, max diff, misses)."""
    checked, worst, misses = 0, 0.0, []
    for result in results:
        for run, metrics in zip(result.runs, result.per_run, strict=True):
            for name, value in metrics.items():
                logged = run.metrics.get(f"test/{name}")
                if logged is None:
                    continue
                checked += 1
                diff = abs(logged - value)
                worst = max(worst, diff)
                if diff > LOGGED_TOLERANCE:
                    misses.append(f"{run.name} {name}: logged {logged:.5f}, recomputed {value:.5f}")
    return checked, worst, misses


def measured_on(records: Sequence[RunRecord]) -> list[str]:
    """What the numbers were measured on: data, split sizes, classes, seeds, folds."""
    params = records[0].params
    data = {k: v for k, v in params.items() if k.startswith("data/") and "cache" not in k}
    keys = ("data/_target_", "data/root", "data/layout/_target_", "data/layout/root")
    lines = [f"- data: {', '.join(f'`{k}={data[k]}`' for k in keys if k in data)}"]
    layout = [
        f"{k.removeprefix('data/layout/')}={v}"
        for k, v in data.items()
        if k.startswith(("data/layout/per_class", "data/layout/finding_prob", "data/layout/seed"))
    ]
    if layout:
        lines.append(f"- data generator: {', '.join(layout)}")
    sizes = sorted({str(r.params.get("data/decoding/image_size")) for r in records})
    lines.append(f"- input size: `data.decoding.image_size` = {', '.join(sizes)}")
    for split in ("train", "val", "test"):
        counts = sorted({r.tags.get(f"data.n_{split}") for r in records} - {None})
        if counts:  # several when modality subsets keep different patients, or per fold
            lines.append(f"- {split} patients: {', '.join(counts)}")
    cache = Counter(r.tags["embedding_cache"] for r in records if "embedding_cache" in r.tags)
    if "used" in cache:  # frozen encoders: which runs trained on cached embeddings, and why not
        for state, count in sorted(cache.items()):
            lines.append(f"- embedding cache (frozen encoders): {state} ({count} runs)")
    first = records[0].predictions
    per_class = ", ".join(
        f"{k} {v}" for k, v in first["label_name"].value_counts().sort_index().items()
    )
    lines.append(f"- test set of the first run: {len(first)} patients ({per_class})")
    groups: dict[str, list[RunRecord]] = defaultdict(list)
    for record in records:
        groups[record.label].append(record)
    folds = [runs for runs in groups.values() if _disjoint(runs)]
    if folds:
        pooled = sum(len(r.predictions) for r in folds[0])
        lines.append(
            f"- folds: {len(folds[0])} disjoint test folds per configuration, {pooled} patients "
            "pooled out-of-fold (each predicted once, by the model that never saw it)"
        )
    for key in REPLICATE_KEYS:
        values = sorted({r.params.get(key) for r in records} - {None, "None"})
        if values:
            lines.append(f"- {key}: {', '.join(values)}")
    return lines


def _replicate_name(run: RunRecord) -> str:
    named = zip(("seed", "fold", "test fold"), run.replicate, strict=True)
    return ", ".join(f"{name} {value}" for name, value in named if value not in ("-", "None"))


def _cell(result: ConfigResult, metric: str) -> str:
    low, high = result.ci[metric]
    return f"{result.mean(metric):.3f} ± {result.std(metric):.3f} [{low:.3f}, {high:.3f}]"


def _verdict(result: ConfigResult) -> str:
    test = result.test
    if test.get("verdict") == "reference":
        return "**reference**"
    if "p" not in test or not np.isfinite(test["p"]):
        return str(test.get("verdict", ""))
    return f"{test['test']} p={test['p']:.3g}, Holm {test['p_holm']:.3g}: {test['verdict']}"


def _selection(result: ConfigResult) -> str:
    score = result.val_score
    return f"{score:.3f}" if np.isfinite(score) else "not logged"


SIGNIFICANCE = (
    "The reference is the configuration with the best mean validation score (the monitored "
    "metric at the checkpoint each run's early stopping selected), unless fixed with "
    "`reference=LABEL`: never a test result. Every other configuration is tested against it "
    "on the test patients both predicted, once per shared replicate (same seed or fold): exact "
    "McNemar test on correct / wrong outcomes, or, when a patient (`data.patient_key`) has "
    "several test samples, a sign-flip permutation test over patients. The per-replicate tests "
    "share their patients, so they are combined by twice the mean of their p-values (valid "
    "under any dependence; Fisher's method would assume independence). The folds of a k-fold "
    "sweep test disjoint patients: their predictions are pooled out-of-fold (each patient "
    "predicted once, by the model that never saw it), bootstrapped and tested once on the pool. "
    "Two configurations "
    f"without shared test patients are '{NOT_COMPARABLE}'; if they were tested on the same "
    "data, an unpaired Welch test of per-patient correctness is given instead. p-values are "
    f"Holm-adjusted across the comparisons. Significant: Holm-adjusted p < {ALPHA}. "
    "docs/statistics.md explains each choice."
)


def markdown(
    results: list[ConfigResult],
    records: list[RunRecord],
    skipped: list[str],
    n_resamples: int,
    title: str,
    figure: str,
) -> str:
    titles = [METRIC_TITLES[m] for m in METRICS]
    monitor = records[0].monitor
    lines = [
        f"# {title}",
        "",
        f"{len(records)} runs in {len(results)} configurations, "
        f"written {datetime.now():%Y-%m-%d %H:%M}.",
        "",
        "## Measured on",
        "",
        *measured_on(records),
        "",
        "## Results (test set)",
        "",
        "Each cell: mean ± std over replicate runs (seeds / folds) [95% bootstrap CI of that "
        f"mean over test patients, {n_resamples} resamples, scipy.stats.bootstrap: BCa for "
        f"accuracy, F1 and AUROC; ECE ({CI_METHODS['ece']}), lower is better, is biased "
        "upwards under resampling, so its percentile interval is shifted by the bootstrap bias "
        f"estimate]. `{monitor}` (validation): the score each run's checkpoint was selected on, "
        "mean over replicates; epochs: where early stopping found that checkpoint, of the "
        "epochs run. Sorted by validation score, the reference first.",
        "",
        markdown_table(
            ["configuration", "runs", f"{monitor} (val)", "epochs", *titles, "vs reference"],
            [
                [
                    r.label,
                    len(r.runs),
                    _selection(r),
                    r.epochs(),
                    *(_cell(r, m) for m in METRICS),
                    _verdict(r),
                ]
                for r in results
            ],
        ),
        "",
        f"![metrics with 95% bootstrap CIs]({figure})",
        "",
        "## Significance",
        "",
        SIGNIFICANCE,
        "",
    ]
    not_significant = [r.label for r in results[1:] if r.test.get("verdict") == "n.s."]
    apart = [r.label for r in results[1:] if str(r.test.get("verdict")).startswith(NOT_COMPARABLE)]
    if not_significant:
        lines.append(
            f"**Not significantly different from the reference ({results[0].label}):** "
            + "; ".join(not_significant)
        )
    elif len(results) > 1 and len(apart) < len(results) - 1:
        lines.append(
            "Every configuration tested pairwise differs significantly from the reference."
        )
    elif len(results) == 1:
        lines.append("Only one configuration: nothing to test.")
    if apart:
        lines.append(f"**{NOT_COMPARABLE.capitalize()} with the reference:** " + "; ".join(apart))
    rows = [
        [
            r.label,
            r.test.get("pairs", 0),
            r.test.get("patients", 0),
            r.test.get("reference_only_correct", 0),
            r.test.get("other_only_correct", 0),
            ", ".join(f"{p:.3g}" for p in r.test.get("p_per_replicate", [])),
        ]
        for r in results[1:]
    ]
    header = ["configuration", "replicate pairs", "patients", "only reference correct"]
    lines += ["", markdown_table([*header, "only this correct", "p per replicate"], rows)]
    fold_keys = ("data/fold", "data/layout/test_fold")
    if any(r.params.get(k) not in (None, "None") for r in records for k in fold_keys):
        rows = []
        for result in results:
            intervals = [result.fold_interval(m) for m in METRICS]
            rows.append(
                [result.label] + [f"{mean:.3f} [{lo:.3f}, {hi:.3f}]" for mean, lo, hi in intervals]
            )
        lines += [
            "",
            "## Across folds",
            "",
            "Mean and 95% interval across the replicate runs (folds x seeds) with Nadeau and "
            "Bengio's (2003) corrected variance (1/J + n_test/n_train) s^2, t with J - 1 "
            "degrees of freedom (Bouckaert & Frank 2004): folds share most of their training "
            "data, so the plain t-interval over folds is too narrow. n_train, n_test: the "
            "logged split sizes (`data.n_train`, `data.n_test`).",
            "",
            markdown_table(["configuration", *titles], rows),
        ]
    checked, worst, misses = logged_mismatches(results)
    lines += ["", "## Consistency with MLflow", ""]
    if misses:
        lines += [
            "**Recomputed metrics differ from the logged ones:**",
            *[f"- {m}" for m in misses],
        ]
    else:
        lines.append(
            "The metrics recomputed from `test_predictions.csv` equal the logged `test/*` "
            f"metrics ({checked} values checked, max difference {worst:.2g})."
        )
    if skipped:
        lines += ["", "Runs left out:", *[f"- {s}" for s in skipped]]
    rows = [
        [result.label, _replicate_name(run), f"`{run.run_id}`"] + [f"{m[k]:.4f}" for k in METRICS]
        for result in results
        for run, m in zip(result.runs, result.per_run, strict=True)
    ]
    lines += [
        "",
        "## Runs",
        "",
        markdown_table(["configuration", "replicate", "MLflow run", *titles], rows),
    ]
    return "\n".join(lines) + "\n"


def bar_chart(results: list[ConfigResult], path: Path) -> Path:
    """One panel per metric: mean with 95% bootstrap CI as error bar, each replicate a dot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [textwrap.fill(r.label, 40) for r in results]
    lines = max(label.count("\n") + 1 for label in labels)
    height = 1.5 + (0.2 + 0.2 * lines) * len(results)
    fig, axes = plt.subplots(1, len(METRICS), figsize=(3.2 * len(METRICS) + 3, height), sharey=True)
    y = np.arange(len(results))
    for ax, metric in zip(axes, METRICS, strict=True):
        means = np.array([r.mean(metric) for r in results])
        low = np.array([r.ci[metric][0] for r in results])
        high = np.array([r.ci[metric][1] for r in results])
        colors = [
            "tab:green" if i == 0 else "tab:gray" if r.test.get("verdict") == "n.s." else "tab:blue"
            for i, r in enumerate(results)
        ]  # reference (chosen on validation) first
        ax.barh(y, means, color=colors, alpha=0.75)
        # the CI as its own segment (a bootstrap interval need not be symmetric about the mean)
        ax.errorbar((low + high) / 2, y, xerr=(high - low) / 2, fmt="none", ecolor="k", capsize=3)
        for i, r in enumerate(results):
            ax.plot([m[metric] for m in r.per_run], [i] * len(r.per_run), "k.", markersize=4)
        ax.set_title(METRIC_TITLES[metric] + (" (lower better)" if metric == "ece" else ""))
        ax.set_xlim(0, 1 if metric != "ece" else max(0.05, float(high.max()) * 1.1))
        ax.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(y, labels)
    axes[0].invert_yaxis()
    fig.suptitle(
        "green: reference (best on validation); gray: not significantly different from it "
        "(paired test, Holm); dots: runs",
        fontsize=9,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # very long labels: layout as good as it gets
        fig.tight_layout()
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path


def html(markdown_text: str, title: str) -> str:
    from markdown_it import MarkdownIt

    body = MarkdownIt("commonmark").enable("table").render(markdown_text)
    style = (
        "body{font-family:sans-serif;max-width:1200px;margin:2em auto}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 6px}"
        "img{max-width:100%}"
    )
    head = f"<meta charset='utf-8'><title>{title}</title><style>{style}</style>"
    return f"<!doctype html><html><head>{head}</head><body>{body}</body></html>\n"


def summary_frame(results: list[ConfigResult]) -> pd.DataFrame:
    rows = []
    for r in results:
        row = {
            "configuration": r.label,
            "runs": len(r.runs),
            "val_score": r.val_score,
            "epochs": r.epochs(),
        }
        for m in METRICS:
            row |= {
                f"{m}_mean": r.mean(m),
                f"{m}_std": r.std(m),
                f"{m}_ci_low": r.ci[m][0],
                f"{m}_ci_high": r.ci[m][1],
            }
        row |= {
            "test": r.test.get("test"),
            "p": r.test.get("p"),
            "p_holm": r.test.get("p_holm"),
            "verdict": r.test.get("verdict"),
        }
        rows.append(row)
    return pd.DataFrame(rows)


def write_report(
    records: list[RunRecord],
    skipped: list[str],
    out_dir: Path,
    n_resamples: int = 2000,
    title: str = "mmfusion comparison",
    reference: str | None = None,
) -> Path:
    """Write comparison.md / .html / .csv / .json and the bar chart; returns the markdown path.
    `reference`: the configuration to test the others against (default: best on validation)."""
    if not records:
        raise MmfusionError("no finished runs with test predictions to compare")
    out_dir.mkdir(parents=True, exist_ok=True)
    label_configurations(records)
    results = order_by_validation(summarise(records, n_resamples), reference)
    test_against_reference(results)
    figure = bar_chart(results, out_dir / "comparison.png")
    text = markdown(results, records, skipped, n_resamples, title, figure.name)
    (out_dir / "comparison.md").write_text(text)
    (out_dir / "comparison.html").write_text(html(text, title))
    frame = summary_frame(results)
    frame.to_csv(out_dir / "comparison.csv", index=False)
    (out_dir / "comparison.json").write_text(
        json.dumps(frame.to_dict(orient="records"), indent=2, default=str)
    )
    return out_dir / "comparison.md"


def compare(
    tracking_uri: str,
    experiment: str = "mmfusion",
    parent_run_id: str | None = None,
    multirun_dir: str | None = None,
    out_dir: Path | None = None,
    n_resamples: int = 2000,
    log_to_mlflow: bool = True,
    reference: str | None = None,
) -> Path:
    """Select the runs, write the report, log it to the parent run (or a new comparison run)."""
    client = client_for(tracking_uri)
    exp_id = experiment_id(client, experiment)
    if multirun_dir and not parent_run_id:
        parent_run_id = parent_of_sweep_dir(client, exp_id, multirun_dir)
    records, skipped = load_records(client, find_runs(client, exp_id, parent_run_id))
    if out_dir is None:
        out_dir = (
            Path(multirun_dir) / "comparison"
            if multirun_dir
            else Path("outputs/compare") / f"{datetime.now():%Y-%m-%d_%H-%M-%S}"
        )
    report = write_report(
        records,
        skipped,
        out_dir,
        n_resamples,
        title=f"mmfusion comparison: {experiment}"
        + (f", multirun {parent_run_id[:8]}" if parent_run_id else ""),
        reference=reference,
    )
    if log_to_mlflow:
        with deferred():  # a signal must not cut an MLflow write in two (`runtime.signals`)
            run_id = parent_run_id
            if run_id is None:
                run_id = client.create_run(
                    exp_id,
                    run_name=f"comparison-{datetime.now():%Y%m%d-%H%M%S}",
                    tags={"mmfusion.compared_runs": ",".join(r.run_id for r in records)[:5000]},
                ).info.run_id
                client.set_terminated(run_id)
            client.log_artifacts(run_id, str(out_dir), "comparison")
    return report
