"""A trained model in use: where it comes from (`sources`: checkpoint, run directory or MLflow
URI), files in and probabilities out (`predictor`), one patient explained (`analysis`) and
introduced (`model_card`) on a web page (`app`, Gradio), and the best checkpoint packaged as an
MLflow model (`mlflow_model`, served through `pyfunc_model`).

May import data, models, explain, evaluation, tracking and errors; never training or the CLI.
"""
