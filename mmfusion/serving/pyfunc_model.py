"""MLflow "model from code": loaded by `mlflow.pyfunc.load_model`, never unpickled."""

from __future__ import annotations

import mlflow
import pandas as pd
from mlflow.pyfunc import PythonModel


class FusionPyfunc(PythonModel):
    """Paths per modality in, predicted class and class probabilities out."""

    def load_context(self, context) -> None:
        from mmfusion.serving.predictor import Predictor

        self.predictor = Predictor(context.artifacts["checkpoint"])

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        from mmfusion.serving.mlflow_model import rows_from_frame

        rows = rows_from_frame(pd.DataFrame(model_input), self.predictor.modalities)
        probs = self.predictor.predict_many(rows)
        frame = self.predictor.as_frame([str(i) for i in range(len(rows))], rows, probs)
        return frame[["prediction"] + [f"prob_{c}" for c in self.predictor.class_names]]


mlflow.models.set_model(FusionPyfunc())
