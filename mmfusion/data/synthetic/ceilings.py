"""The Bayes accuracy ceiling of each modality subset, in closed form and as measured."""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence

from mmfusion.data.synthetic.spec import CLASSES, HEALTHY, MODALITIES


def subset_name(subset: Sequence[str]) -> str:
    """Canonical name of a modality subset, e.g. ``("cough", "ct") -> "ct+cough"``."""
    return "+".join(m for m in MODALITIES if m in subset)


def _subsets() -> list[tuple[str, ...]]:
    return [c for r in range(1, len(MODALITIES) + 1) for c in itertools.combinations(MODALITIES, r)]


def _no_finding_prediction(
    subset: Sequence[str], finding_prob: Mapping[str, float], class_prior: Mapping[str, float]
) -> str:
    """Bayes decision when no modality in ``subset`` shows a finding (ties -> first class)."""
    miss = math.prod(1.0 - float(finding_prob[m]) for m in subset)
    score = {c: float(class_prior[c]) * (1.0 if c == HEALTHY else miss) for c in CLASSES}
    return max(CLASSES, key=lambda c: score[c])


def ceilings(
    finding_prob: Mapping[str, float], class_prior: Mapping[str, float]
) -> dict[str, float]:
    """Bayes accuracy ceiling of every non-empty modality subset (keys like ``"ct+cxr"``).

    A shown finding identifies its class exactly; otherwise all classes look Healthy and the best
    guess is ``argmax_c prior_c * q_c`` with ``q_Healthy = 1`` and ``q_c = prod_m (1 - p_m)``.
    """
    total = sum(float(class_prior[c]) for c in CLASSES)
    if total <= 0:
        raise ValueError("class_prior must have positive mass")
    prior = {c: float(class_prior[c]) / total for c in CLASSES}
    out: dict[str, float] = {}
    for subset in _subsets():
        miss = math.prod(1.0 - float(finding_prob[m]) for m in subset)
        shown = sum(prior[c] * (1.0 - miss) for c in CLASSES if c != HEALTHY)
        best = max(prior[c] * (1.0 if c == HEALTHY else miss) for c in CLASSES)
        out[subset_name(subset)] = shown + best
    return out


def empirical_ceilings(rows: Sequence[dict], finding_prob: Mapping[str, float]) -> dict[str, float]:
    """Accuracy of the Bayes rule (which knows the shown findings) on the drawn patients."""
    prior = {c: 1.0 / len(CLASSES) for c in CLASSES}  # splits are class-balanced by construction
    out: dict[str, float] = {}
    for subset in _subsets():
        fallback = _no_finding_prediction(subset, finding_prob, prior)
        correct = 0
        for row in rows:
            seen = any(int(row[f"{m}_shown"]) for m in subset)
            correct += int(seen or row["label"] == fallback)
        out[subset_name(subset)] = correct / len(rows)
    return out
