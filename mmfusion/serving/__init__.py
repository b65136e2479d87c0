"""A trained model in use: files in, probabilities out (`predictor`), and the best checkpoint
packaged as an MLflow model (`mlflow_model`, served through `pyfunc_model`).

May import data, models, explain, evaluation, tracking and errors; never training or the CLI.
"""
