"""How good a trained model is: evaluation artifacts of one split (curves, report, calibration,
figures), robustness to missing and noisy modalities, statistics, and the comparison of runs.

May import models, data, tracking and errors; never training, serving or the CLI.
"""
