"""Hydra discovers sweepers only in the `hydra_plugins` namespace: mmfusion's Optuna sweeper."""
