"""The MLflow pyfunc face of a trained model, logged as code: a model that carries its own code.

:func:`salespilot.training.tracking.log_run` logs this file as the model's code (MLflow's
"models from code"), the model's files (:meth:`SalesPilotModel.save`: the booster's text
model, the calibrator, a JSON description) as its ``model`` artifact, and a copy of
:mod:`salespilot.training.scoring` as ``salespilot_scoring.py`` in its ``code/`` folder, with
pinned requirements that do not include ``salespilot``. So
``mlflow.pyfunc.load_model("models:/<name>@champion").predict(frame)`` (calibrated
probabilities, column ``probability``) works in any environment with those requirements, the
``salespilot`` package installed or not. Serving uses :func:`salespilot.training.load_model`,
which unwraps the same :class:`SalesPilotModel` to get raw scores and SHAP contributions too.

Nothing here may import from ``salespilot`` except :mod:`salespilot.training.scoring` (and
only when the package is there). Versions registered before models were logged as code hold
a pickled :class:`SalesPilotPyfunc` with the model inside; they still load here.
"""

from __future__ import annotations

import mlflow.models
import mlflow.pyfunc
import numpy as np
import pandas as pd

try:  # inside the project: the package's own module (one class, whatever loaded the model)
    from salespilot.training.scoring import SalesPilotModel
except ImportError:  # anywhere else: the copy the registered model carries in its code/
    from salespilot_scoring import SalesPilotModel  # type: ignore[no-redef]

#: The copy's module name in a registered model's ``code/`` folder, and its artifact's key.
SCORING_MODULE = "salespilot_scoring"
MODEL_ARTIFACT = "model"


class SalesPilotPyfunc(mlflow.pyfunc.PythonModel):
    """Pyfunc face of a :class:`SalesPilotModel` (``predict`` = calibrated probability)."""

    # The model is logged with an explicit signature and input example, so MLflow's
    # type-hint-based validation (and its "add type hints" notice at class creation) is skipped.
    _skip_type_hint_validation = True

    def __init__(self, model: SalesPilotModel | None = None) -> None:
        self.model = model

    def load_context(self, context) -> None:
        if context is not None and MODEL_ARTIFACT in (context.artifacts or {}):
            self.model = SalesPilotModel.load(context.artifacts[MODEL_ARTIFACT])

    def predict(self, context, model_input, params=None):
        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        return pd.DataFrame({"probability": np.asarray(self.model.predict_proba(frame))})


mlflow.models.set_model(SalesPilotPyfunc())
