"""Data: where each patient's files are (`layouts/`), how a file becomes an array
(`decoding/`), the decoded-array cache and leakage guard, the LightningDataModule, the dataset
checker (`checker/`) and the synthetic benchmark (`synthetic/`).

May import `mmfusion.errors` only; never models, training, evaluation, tracking or the CLI.
"""
