"""Evaluation artifacts of a trained model on one split: curves, report, calibration, figures."""
