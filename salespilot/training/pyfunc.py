"""The MLflow pyfunc wrapper: the logged model carries the whole :class:`SalesPilotModel`.

``mlflow.pyfunc.load_model(...).predict(frame)`` returns calibrated probabilities; serving uses
:func:`salespilot.training.load_model`, which unwraps the same object to get raw scores and
SHAP contributions too. Imported only where MLflow is needed (it is heavy).
"""

from __future__ import annotations

import warnings

import mlflow.pyfunc
import numpy as np
import pandas as pd

from salespilot.training.fit import SalesPilotModel

# MLflow suggests type hints on predict for its hint-based validation; the model is logged
# with an explicit signature instead, so the suggestion (printed at class creation) is noise.
warnings.filterwarnings("ignore", message=".*Add type hints to the `predict` method.*")


class SalesPilotPyfunc(mlflow.pyfunc.PythonModel):
    """Pyfunc face of a :class:`SalesPilotModel` (``predict`` = calibrated probability)."""

    def __init__(self, model: SalesPilotModel) -> None:
        self.model = model

    def predict(self, context, model_input, params=None):
        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        return pd.DataFrame({"probability": np.asarray(self.model.predict_proba(frame))})
