"""Label confounds: file properties whose distribution differs between classes.

Any number of classes, any attribute, independent of the order of values and of classes:
- categorical properties (format, colour mode, bit depth, size, codec, sample rate, channels):
  chi-square test of the class x value table, effect size Cramér's V with Bergsma's (2013) bias
  correction (0: independent, 1: the value determines the class); the message names the value
  whose share differs most between classes, with its share in each class;
- numeric properties (width, height, file size, duration): Kruskal-Wallis test, effect size
  epsilon-squared = H / (n - 1) (Tomczak & Tomczak 2014), with each class's median.

A property is reported when p < `alpha` and its effect reaches `partial` (V >= 0.2, or
epsilon-squared >= 0.2^2: for two classes both are squared rank / phi correlations); it is a
strong confound from `strong` (V >= 0.5, epsilon-squared >= 0.25). E.g. PNG for 91% of one
class and 50% of the other is V ~ 0.45: partial; every covid cough at 48 kHz and every other
class at 16 kHz is V = 1: strong.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import chi2_contingency, kruskal

CATEGORICAL = {
    "image": ("format", "mode", "bit_depth", "size"),
    "audio": ("format", "codec", "sample_rate", "channels"),
}
NUMERIC = {"image": ("width", "height", "bytes"), "audio": ("duration", "bytes")}
MAX_LEVELS = 20  # more distinct values: rare ones pooled as "other", or left to the numeric tests


def _value(record: dict[str, Any], attribute: str) -> str:
    if attribute == "size":
        return f"{record['width']}x{record['height']}"
    return str(record[attribute])


def cramers_v(table: np.ndarray) -> tuple[float, float]:
    """(bias-corrected Cramér's V, chi-square p) of a contingency table (Bergsma 2013)."""
    chi2 = chi2_contingency(table, correction=False)[0]
    p = chi2_contingency(table)[1]  # Yates-corrected for 2 x 2: conservative on small counts
    n = table.sum()
    rows, cols = table.shape
    phi2 = max(0.0, chi2 / n - (rows - 1) * (cols - 1) / (n - 1))
    rows_c = rows - (rows - 1) ** 2 / (n - 1)
    cols_c = cols - (cols - 1) ** 2 / (n - 1)
    denominator = min(rows_c - 1, cols_c - 1)
    return (math.sqrt(phi2 / denominator) if denominator > 0 else 0.0), float(p)


def _strength(effect: float, partial: float, strong: float) -> str | None:
    return "strong" if effect >= strong else "partial" if effect >= partial else None


def _categorical(
    classes: Sequence[str], values: Sequence[str], min_files: int
) -> dict[str, Any] | None:
    counts = Counter(values)
    if len(counts) > MAX_LEVELS:
        values = [v if counts[v] >= min_files else "other" for v in values]
        if len(set(values)) > MAX_LEVELS:
            return None
    table = pd.crosstab(pd.Series(classes, name="class"), pd.Series(values, name="value"))
    if table.shape[1] < 2 or table.shape[0] < 2:
        return None
    v, p = cramers_v(table.to_numpy())
    shares = table.div(table.sum(axis=1), axis=0)
    pooled = table.sum() / table.to_numpy().sum()
    # the value whose share differs most between classes; of equals (two values are mirror
    # images), the one that marks the fewest classes, then the one with the largest share
    value = min(
        shares.columns,
        key=lambda v: (
            -round(float(shares[v].max() - shares[v].min()), 9),
            int((shares[v] > pooled[v]).sum()),
            -float(shares[v].max()),
        ),
    )
    by_class = shares[value].sort_values(ascending=False)
    return {
        "test": "chi-square",
        "effect_name": "Cramér's V",
        "effect": round(v, 3),
        "p_value": p,
        "value": value,
        "shares": {c: round(float(s), 3) for c, s in by_class.items()},
        "classes": [c for c, share in by_class.items() if share > pooled[value]],
        "detail": f"{value} in {_listing(by_class, '{:.0%}')}",
    }


def _numeric(classes: Sequence[str], values: Sequence[float]) -> dict[str, Any] | None:
    frame = pd.DataFrame({"class": classes, "value": values}).dropna()
    groups = [g["value"].to_numpy(float) for _, g in frame.groupby("class")]
    if len(groups) < 2 or frame["value"].nunique() < 2:
        return None
    h, p = kruskal(*groups)
    epsilon2 = float(h) / (len(frame) - 1)
    medians = frame.groupby("class")["value"].median().sort_values(ascending=False)
    overall = frame["value"].median()
    return {
        "test": "Kruskal-Wallis",
        "effect_name": "epsilon-squared",
        "effect": round(min(epsilon2, 1.0), 3),
        "p_value": float(p),
        "medians": {c: float(m) for c, m in medians.items()},
        "classes": [(medians - overall).abs().idxmax()],  # the class furthest from the rest
        "detail": f"median {_listing(medians.map(_number), '{}')}",
    }


def _number(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


def _listing(by_class: pd.Series, number: str) -> str:
    """'91% of covid vs 50% of Healthy' / '48000 in 100% of covid vs 0% of a, 0% of b'."""
    link = "of" if "%" in number else "in"
    parts = [f"{number.format(v)} {link} {c}" for c, v in by_class.items()]
    return f"{parts[0]} vs {', '.join(parts[1:])}"


def find_confounds(
    records: Sequence[dict[str, Any]],
    alpha: float = 0.01,
    partial: float = 0.2,
    strong: float = 0.5,
    min_files: int = 5,
) -> list[dict[str, Any]]:
    """Confounds of each modality's readable files; strongest first."""
    found = []
    for modality in sorted({r["modality"] for r in records}):
        for kind in ("image", "audio"):
            group = [r for r in records if r["modality"] == modality and r.get("kind") == kind]
            sizes = Counter(r["class"] for r in group)
            if sum(n >= min_files for n in sizes.values()) < 2:
                continue
            group = [r for r in group if sizes[r["class"]] >= min_files]
            classes = [r["class"] for r in group]
            tests = [
                (a, _categorical(classes, [_value(r, a) for r in group], min_files))
                for a in CATEGORICAL[kind]
            ] + [(a, _numeric(classes, [r.get(a) for r in group])) for a in NUMERIC[kind]]
            for attribute, result in tests:
                if result is None or result["p_value"] >= alpha:
                    continue
                # epsilon-squared is a squared correlation: its root meets V's thresholds
                numeric = result["test"] == "Kruskal-Wallis"
                comparable = math.sqrt(result["effect"]) if numeric else result["effect"]
                strength = _strength(comparable, partial, strong)
                if strength is None:
                    continue
                found.append(
                    {
                        "modality": modality,
                        "attribute": attribute,
                        "strength": strength,
                        "comparable_effect": round(comparable, 3),
                        "files": len(group),
                        **result,
                        "message": (
                            f"{modality} {attribute} tracks the label: {result['detail']} "
                            f"({result['effect_name']} {result['effect']:.2f}, {result['test']} "
                            f"p={result['p_value']:.2g}, {len(group)} files)"
                        ),
                    }
                )
    return sorted(found, key=lambda c: -c["comparable_effect"])
