"""Why a model decided: Grad-CAM per branch, modality weights, modality ablation, and how well
the maps localise a known finding.

May import models, data, evaluation, tracking and errors; never training, serving or the CLI.
"""
