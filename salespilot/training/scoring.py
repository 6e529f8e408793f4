"""The scoring half of a trained model, on its own: what a registered model needs to predict.

:class:`SalesPilotModel` holds everything a prediction needs: the raw LightGBM booster
(explanations are its SHAP values, in log-odds), the :class:`Calibrator` chosen on the
validation period (probabilities), the feature list, the categories seen in training and the
readable names. :meth:`SalesPilotModel.save` writes it as plain files (the booster's text
model, the calibrator's scikit-learn estimator, a JSON description) and
:meth:`SalesPilotModel.load` reads them back.

This module imports nothing from ``salespilot`` (only NumPy, pandas, scikit-learn and
LightGBM): every registered model ships a copy of it (:mod:`salespilot.training.pyfunc`), so
a model loads where the ``salespilot`` package is not installed. Fitting lives in
:mod:`salespilot.training.fit`.
"""

from __future__ import annotations

import json
import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

CALIBRATION_METHODS = ("none", "sigmoid", "isotonic")
_CLIP = 1e-4
#: The files :meth:`SalesPilotModel.save` writes.
BOOSTER_FILE, CALIBRATOR_FILE, DESCRIPTION_FILE = "booster.txt", "calibrator.pkl", "model.json"


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


class Calibrator(BaseEstimator):
    """Maps the booster's raw score (log-odds) to a calibrated probability.

    ``none`` is the booster's own sigmoid; ``sigmoid`` is Platt scaling (a logistic regression
    on the raw score); ``isotonic`` a monotone step function of it. ``predict`` before ``fit``
    raises scikit-learn's ``NotFittedError``.
    """

    def __init__(self, method: str = "none") -> None:
        if method not in CALIBRATION_METHODS:
            raise ValueError(f"calibration must be one of {CALIBRATION_METHODS}, got {method!r}")
        self.method = method

    def fit(self, raw: np.ndarray, y: np.ndarray) -> Calibrator:
        raw = np.asarray(raw, dtype=float).reshape(-1, 1)
        if self.method == "sigmoid":
            from sklearn.linear_model import LogisticRegression

            self.estimator_ = LogisticRegression(C=1e4).fit(raw, y)
        elif self.method == "isotonic":
            from sklearn.isotonic import IsotonicRegression

            self.estimator_ = IsotonicRegression(
                out_of_bounds="clip", y_min=_CLIP, y_max=1 - _CLIP
            ).fit(raw.ravel(), y)
        else:
            self.estimator_ = None
        return self

    def predict(self, raw: np.ndarray) -> np.ndarray:
        check_is_fitted(self, "estimator_")
        raw = np.asarray(raw, dtype=float)
        if self.method == "sigmoid":
            p = self.estimator_.predict_proba(raw.reshape(-1, 1))[:, 1]
        elif self.method == "isotonic":
            p = self.estimator_.predict(raw)
        else:
            p = _sigmoid(raw)
        return np.clip(p, _CLIP, 1 - _CLIP)


class SalesPilotModel:
    """A trained model: raw LightGBM booster + calibrator + the columns and names it needs."""

    def __init__(
        self,
        *,
        name: str,
        booster: Any,
        calibrator: Calibrator,
        features: list[str],
        categorical: list[str],
        categories: Mapping[str, list],
        readable_names: Mapping[str, str],
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        self.name = name
        self.booster = booster
        self.calibrator = calibrator
        self.features = list(features)
        self.categorical = list(categorical)
        self.categories = {k: list(v) for k, v in categories.items()}
        self.readable_names = dict(readable_names)
        self.metadata = dict(metadata or {})

    def prepare(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The model's input matrix: its columns in its order, categories as seen in training."""
        missing = [f for f in self.features if f not in frame.columns]
        if missing:
            raise KeyError(f"{self.name}: input lacks feature columns {missing}")
        return prepare_features(frame, self.features, self.categories)

    def raw_score(self, frame: pd.DataFrame) -> np.ndarray:
        """The booster's score in log-odds (what SHAP values add up to)."""
        return self.booster.predict(self.prepare(frame), raw_score=True)

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        """Calibrated probability of the positive class, one per row."""
        return self.calibrator.predict(self.raw_score(frame))

    def contributions(self, frame: pd.DataFrame) -> pd.DataFrame:
        """TreeSHAP contributions per feature (log-odds) plus ``base_value``; rows sum to raw_score."""
        values = self.booster.predict(self.prepare(frame), pred_contrib=True)
        return pd.DataFrame(values, columns=[*self.features, "base_value"], index=frame.index)

    def score_all(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(probability, raw score, contributions)`` from one input matrix and one booster
        call: TreeSHAP contributions (features then the base value) add up to the raw score."""
        contrib = np.asarray(self.booster.predict(self.prepare(frame), pred_contrib=True))
        raw = contrib.sum(axis=1)
        return np.asarray(self.calibrator.predict(raw), dtype=float), raw, contrib

    def save(self, folder: str | Path) -> Path:
        """Write the model as ``booster.txt``, ``calibrator.pkl`` and ``model.json`` in
        ``folder`` (created); :meth:`load` reads them back."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / BOOSTER_FILE).write_text(self.booster.model_to_string())
        check_is_fitted(self.calibrator, "estimator_")
        with open(folder / CALIBRATOR_FILE, "wb") as f:
            pickle.dump(self.calibrator.estimator_, f)  # a scikit-learn estimator, or None
        description = {
            "name": self.name,
            "calibration": self.calibrator.method,
            "features": self.features,
            "categorical": self.categorical,
            "categories": self.categories,
            "readable_names": self.readable_names,
            "metadata": self.metadata,
        }
        (folder / DESCRIPTION_FILE).write_text(json.dumps(description, indent=1, default=str))
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> SalesPilotModel:
        """The model :meth:`save` wrote in ``folder``."""
        import lightgbm as lgb

        folder = Path(folder)
        description = json.loads((folder / DESCRIPTION_FILE).read_text())
        calibrator = Calibrator(description["calibration"])
        with open(folder / CALIBRATOR_FILE, "rb") as f:
            calibrator.estimator_ = pickle.load(f)
        return cls(
            name=description["name"],
            booster=lgb.Booster(model_file=str(folder / BOOSTER_FILE)),
            calibrator=calibrator,
            features=description["features"],
            categorical=description["categorical"],
            categories=description["categories"],
            readable_names=description["readable_names"],
            metadata=description["metadata"],
        )


def prepare_features(
    frame: pd.DataFrame, features: list[str], categories: Mapping[str, list]
) -> pd.DataFrame:
    """Select ``features``; categoricals get the training categories (unseen values -> missing),
    everything else becomes float (booleans included)."""
    out = {}
    for f in features:
        col = frame[f]
        if f in categories:
            # categories were learned as strings: compare like with like (codes 1 vs "1")
            values = col.astype("object")
            values = values.where(values.isna(), values.astype(str))
            out[f] = pd.Categorical(values.where(values.notna(), None), categories=categories[f])
        else:
            out[f] = pd.to_numeric(col, errors="coerce").astype("float64")
    return pd.DataFrame(out, index=frame.index)
