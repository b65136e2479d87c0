"""Deterministic procedural CT / CXR / cough benchmark with a known Bayes accuracy ceiling.

The generator writes the exact folder layout of the public Kaggle CXR-CT-Cough dataset so the real
data pipeline can run on it unchanged.  Every patient has a class; each modality independently
*shows* the class finding with probability ``finding_prob[m]`` and is otherwise drawn from exactly
the Healthy distribution.  All other factors (anatomy, contrast, noise, duration, loudness) are
class-independent, so the best achievable accuracy of any modality subset has a closed form
(:func:`ceilings`).  That lets fusion experiments be judged against a known optimum.
"""

from mmfusion.data.synthetic.ceilings import ceilings, subset_name
from mmfusion.data.synthetic.spec import (
    CLASSES,
    GENERATOR_VERSION,
    MODALITIES,
    MODALITY_DIRS,
    SPLIT_DIRS,
    SyntheticSpec,
)
from mmfusion.data.synthetic.writer import ensure_synthetic, finding_region, generate

__all__ = [
    "CLASSES",
    "GENERATOR_VERSION",
    "MODALITIES",
    "MODALITY_DIRS",
    "SPLIT_DIRS",
    "SyntheticSpec",
    "ceilings",
    "ensure_synthetic",
    "finding_region",
    "generate",
    "subset_name",
]
