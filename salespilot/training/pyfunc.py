"""The MLflow pyfunc wrapper: the logged model carries the whole :class:`SalesPilotModel`.

``mlflow.pyfunc.load_model(...).predict(frame)`` returns calibrated probabilities; serving uses
:func:`salespilot.training.load_model`, which unwraps the same object to get raw scores and
SHAP contributions too. Imported only where MLflow is needed (it is heavy).
"""

from __future__ import annotations

import mlflow.pyfunc
import numpy as np
import pandas as pd

from salespilot.training.fit import SalesPilotModel


class SalesPilotPyfunc(mlflow.pyfunc.PythonModel):
    """Pyfunc face of a :class:`SalesPilotModel` (``predict`` = calibrated probability)."""

    # The model is logged with an explicit signature and input example, so MLflow's
    # type-hint-based validation (and its "add type hints" notice at class creation) is skipped.
    _skip_type_hint_validation = True

    def __init__(self, model: SalesPilotModel) -> None:
        self.model = model

    def predict(self, context, model_input, params=None):
        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        return pd.DataFrame({"probability": np.asarray(self.model.predict_proba(frame))})
