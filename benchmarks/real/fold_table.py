"""One results row of a cross-validated recipe: the folds of a multirun, read back from MLflow.

    python benchmarks/real/fold_table.py MULTIRUN_DIR [--tracking-uri sqlite:///mlflow.db]
        [--experiment real_cxr3] [--json OUT]
    python benchmarks/real/fold_table.py --csv FOLD0/test_predictions.csv FOLD1/... [--json OUT]

MULTIRUN_DIR is the sweep dir of `python -m mmfusion experiment=real_<name> ...` (one job per
test fold). Each fold tests on different patients, so the folds are not replicates of one test
set: this reports, from each fold's `test_predictions.csv`,

- per fold: accuracy, macro-F1, macro-AUROC, ECE, recall of each class, the validation accuracy
  that picked its checkpoint, and its wall-clock time;
- over folds: mean, sd and the 95% Student-t interval of the mean (k-fold CV: the folds share
  training data, so this interval is optimistic: Nadeau & Bengio 2003);
- pooled out-of-fold: every patient predicted once, by the model that never saw it; metrics
  over all of them with a 95% bootstrap interval over patients (2000 resamples).

`--csv` reads the folds' `test_predictions.csv` files directly (e.g. from
`python -m mmfusion.evaluate`), in test-fold order; runtimes and validation accuracy are then
not known.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from mmfusion.evaluation.statistics import (
    METRICS,
    bootstrap_ci,
    nadeau_bengio_interval,
    run_metrics,
)
from mmfusion.tracking.runs import client_for, experiment_id, find_runs, load_records
from mmfusion.tracking.runs import parent_of_sweep_dir as parent_of


def t_interval(values: list[float]) -> tuple[float, float]:
    from scipy import stats

    array = np.asarray(values, dtype=float)
    if len(array) < 2 or array.std() == 0:
        return float(array.mean()), float(array.mean())
    low, high = stats.t.interval(0.95, len(array) - 1, loc=array.mean(), scale=stats.sem(array))
    return float(low), float(high)


def recalls(labels: np.ndarray, preds: np.ndarray, classes: list[str]) -> dict[str, float]:
    return {
        name: float((preds[labels == k] == k).mean()) if (labels == k).any() else float("nan")
        for k, name in enumerate(classes)
    }


def fold_rows(records, client) -> list[dict]:
    rows = []
    for record in records:
        frame = record.predictions
        classes = record.class_names
        labels = frame["label"].to_numpy()
        probs = frame[[f"prob_{c}" for c in classes]].to_numpy(dtype=float)
        info = client.get_run(record.run_id).info
        minutes = (info.end_time - info.start_time) / 60000 if info.end_time else float("nan")
        rows.append(
            {
                "run_id": record.run_id,
                "test_fold": int(record.params.get("data/layout/test_fold", -1)),
                "n": len(frame),
                **run_metrics(labels, probs),
                "recall": recalls(labels, probs.argmax(1), classes),
                "val_acc": record.metrics.get("val/acc", float("nan")),
                "minutes": minutes,
                "classes": classes,
                "labels": labels.tolist(),
                "probs": probs.tolist(),
            }
        )
    return sorted(rows, key=lambda r: r["test_fold"])


def csv_rows(paths: list[Path]) -> list[dict]:
    """Fold rows from prediction CSVs, the i-th file being test fold i."""
    import pandas as pd

    rows = []
    for test_fold, path in enumerate(paths):
        frame = pd.read_csv(path)
        classes = [c.removeprefix("prob_") for c in frame.columns if c.startswith("prob_")]
        labels = frame["label"].to_numpy()
        probs = frame[[f"prob_{c}" for c in classes]].to_numpy(dtype=float)
        rows.append(
            {
                "source": str(path),
                "test_fold": test_fold,
                "n": len(frame),
                **run_metrics(labels, probs),
                "recall": recalls(labels, probs.argmax(1), classes),
                "val_acc": float("nan"),
                "minutes": float("nan"),
                "classes": classes,
                "labels": labels.tolist(),
                "probs": probs.tolist(),
            }
        )
    return rows


def summarise(rows: list[dict]) -> dict:
    """Mean / sd / t interval over folds and pooled out-of-fold metrics with bootstrap CIs."""
    labels = np.concatenate([r["labels"] for r in rows])
    probs = np.concatenate([r["probs"] for r in rows])[None]  # one "replicate": all folds
    classes = rows[0]["classes"]
    summary = {"folds": len(rows), "n": len(labels), "classes": classes}
    for metric in (*METRICS, "val_acc", "minutes"):
        values = [r[metric] for r in rows]
        summary[metric] = {
            "mean": float(np.mean(values)),
            "sd": float(np.std(values, ddof=1)) if len(values) > 1 else 0.0,
            "t95": t_interval(values),
            # folds share their training data: the corrected variance (statistics.md); a fold
            # tests on 1 / k of the patients and trains on (k - 2) / k (one fold validates)
            "nb95": nadeau_bengio_interval(values, len(rows) - 2, 1)[1:]
            if len(rows) > 2
            else (float("nan"), float("nan")),
            "per_fold": values,
        }
    pooled = run_metrics(labels, probs[0])
    summary["pooled"] = {
        m: {"value": pooled[m], "bootstrap95": bootstrap_ci(labels, probs, m)} for m in METRICS
    }
    summary["recall"] = {
        c: {"mean": float(np.mean([r["recall"][c] for r in rows]))} for c in classes
    }
    summary["pooled_recall"] = recalls(labels, probs[0].argmax(1), classes)
    return summary


def markdown(summary: dict) -> str:
    acc = summary["acc"]
    low, high = acc["t95"]
    nb_low, nb_high = acc["nb95"]
    plow, phigh = summary["pooled"]["acc"]["bootstrap95"]
    recall = ", ".join(f"{c} {v:.3f}" for c, v in summary["pooled_recall"].items())
    return "\n".join(
        [
            f"- accuracy, mean over {summary['folds']} folds: **{acc['mean']:.3f}** "
            f"± {acc['sd']:.3f} (95% Nadeau-Bengio [{nb_low:.3f}, {nb_high:.3f}]; plain t over "
            f"folds [{low:.3f}, {high:.3f}], too narrow); per fold "
            + ", ".join(f"{v:.3f}" for v in acc["per_fold"]),
            f"- pooled out-of-fold ({summary['n']} patients): accuracy "
            f"{summary['pooled']['acc']['value']:.3f} [bootstrap 95% {plow:.3f}, {phigh:.3f}]",
            *(
                f"- {m}: {summary[m]['mean']:.3f} ± {summary[m]['sd']:.3f} over folds, pooled "
                f"{summary['pooled'][m]['value']:.3f} [{summary['pooled'][m]['bootstrap95'][0]:.3f}"
                f", {summary['pooled'][m]['bootstrap95'][1]:.3f}]"
                for m in METRICS[1:]
            ),
            f"- recall per class (pooled): {recall}",
            *(
                [
                    f"- validation accuracy, last epoch: {summary['val_acc']['mean']:.3f} "
                    f"± {summary['val_acc']['sd']:.3f}",
                    f"- wall-clock per fold: {summary['minutes']['mean']:.1f} min "
                    f"(total {sum(summary['minutes']['per_fold']):.0f} min)",
                ]
                if np.isfinite(summary["minutes"]["mean"])
                else []
            ),
        ]
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("multirun_dir", type=Path, nargs="?")
    parser.add_argument("--csv", type=Path, nargs="+", help="test_predictions.csv per fold")
    parser.add_argument("--tracking-uri", default="sqlite:///mlflow.db")
    parser.add_argument("--experiment", default="mmfusion")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.csv:
        summary = summarise(csv_rows(args.csv))
    elif args.multirun_dir:
        client = client_for(args.tracking_uri)
        exp_id = experiment_id(client, args.experiment)
        parent = parent_of(client, exp_id, str(args.multirun_dir.resolve()))
        records, skipped = load_records(client, find_runs(client, exp_id, parent))
        if not records:
            raise SystemExit(f"error: no finished fold runs under {args.multirun_dir}: {skipped}")
        summary = summarise(fold_rows(records, client))
        summary["skipped"] = skipped
    else:
        parser.error("give a MULTIRUN_DIR or --csv files")
    print(markdown(summary))
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
