"""The scoring half of a trained model, on its own: what a registered model needs to predict.

:class:`SalesPilotModel` holds everything a prediction needs: the raw LightGBM booster
(explanations are its SHAP values, in log-odds), the :class:`Calibrator` chosen on the
validation period (probabilities), the feature list, the categories seen in training and the
readable names. :meth:`SalesPilotModel.save` writes it as plain files (the booster's text
model, a JSON description with the calibrator's parameters) and :meth:`SalesPilotModel.load`
reads them back; predicting needs no scikit-learn (fitting a calibrator does).

This module imports nothing from ``salespilot`` (only NumPy, pandas, LightGBM, and scikit-learn
to fit a calibrator): every registered model ships a copy of it
(:mod:`salespilot.training.pyfunc`), so a model loads where the ``salespilot`` package is not
installed. Fitting lives in
:mod:`salespilot.training.fit`.
"""

from __future__ import annotations

import importlib
import json
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

CALIBRATION_METHODS = ("none", "sigmoid", "isotonic")
_CLIP = 1e-4
#: The files :meth:`SalesPilotModel.save` writes (and the calibrator file of older saves).
BOOSTER_FILE, CALIBRATOR_FILE, DESCRIPTION_FILE = "booster.txt", "calibrator.pkl", "model.json"
#: one lazy booster read at a time (two requests asking at once parse it once)
_BOOSTER_LOCK = threading.Lock()


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


class Calibrator:
    """Maps the booster's raw score (log-odds) to a calibrated probability.

    ``none`` is the booster's own sigmoid; ``sigmoid`` is Platt scaling (a logistic regression
    on the raw score); ``isotonic`` a monotone step function of it. ``fit`` uses scikit-learn
    and keeps only the fitted estimator's plain parameters in ``params_`` (``coef`` and
    ``intercept``; ``x_thresholds`` and ``y_thresholds``), so ``predict`` is NumPy alone
    (``numpy.interp`` between the thresholds, which is what the isotonic regression does) and a
    saved model loads without scikit-learn. ``predict`` before ``fit`` raises scikit-learn's
    ``NotFittedError``.
    """

    def __init__(self, method: str = "none") -> None:
        if method not in CALIBRATION_METHODS:
            raise ValueError(f"calibration must be one of {CALIBRATION_METHODS}, got {method!r}")
        self.method = method

    def fit(self, raw: np.ndarray, y: np.ndarray) -> Calibrator:
        raw = np.asarray(raw, dtype=float).reshape(-1, 1)
        if self.method == "sigmoid":
            from sklearn.linear_model import LogisticRegression

            self.params_ = _plain_params(self.method, LogisticRegression(C=1e4).fit(raw, y))
        elif self.method == "isotonic":
            from sklearn.isotonic import IsotonicRegression

            iso = IsotonicRegression(out_of_bounds="clip", y_min=_CLIP, y_max=1 - _CLIP)
            self.params_ = _plain_params(self.method, iso.fit(raw.ravel(), y))
        else:
            self.params_ = {}
        return self

    def predict(self, raw: np.ndarray) -> np.ndarray:
        params = self._fitted_params()
        raw = np.asarray(raw, dtype=float)
        if self.method == "sigmoid":
            p = _sigmoid(params["coef"] * raw + params["intercept"])
        elif self.method == "isotonic":
            # the isotonic regression's own prediction: linear between its thresholds,
            # clipped to the end values outside them
            p = np.interp(raw, params["x_thresholds"], params["y_thresholds"])
        else:
            p = _sigmoid(raw)
        return np.clip(p, _CLIP, 1 - _CLIP)

    def _fitted_params(self) -> dict[str, Any]:
        params = getattr(self, "params_", None)
        if params is None and "estimator_" in self.__dict__:
            # a calibrator pickled before the parameters were kept: read them off its estimator
            params = self.params_ = _plain_params(self.method, self.__dict__["estimator_"])
        if params is None:
            from sklearn.exceptions import NotFittedError

            raise NotFittedError(
                f"This {type(self).__name__} instance is not fitted yet. Call 'fit' with "
                "appropriate arguments before using this estimator."
            )
        return params

    def to_json(self) -> dict[str, Any]:
        """``{"method", "params"}``: everything :meth:`from_json` needs, as plain numbers."""
        return {"method": self.method, "params": self._fitted_params()}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Calibrator:
        calibrator = cls(data["method"])
        params = dict(data["params"])
        for key in ("x_thresholds", "y_thresholds"):
            if key in params:
                params[key] = np.asarray(params[key], dtype=float)
        calibrator.params_ = params
        return calibrator


def _plain_params(method: str, estimator: Any) -> dict[str, Any]:
    """The fitted scikit-learn estimator's parameters the prediction needs, as plain numbers."""
    if method == "sigmoid":
        return {
            "coef": float(np.ravel(estimator.coef_)[0]),
            "intercept": float(np.ravel(estimator.intercept_)[0]),
        }
    if method == "isotonic":
        return {
            "x_thresholds": np.asarray(estimator.X_thresholds_, dtype=float),
            "y_thresholds": np.asarray(estimator.y_thresholds_, dtype=float),
        }
    return {}


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
        #: the booster, or None until :attr:`booster` first reads ``booster_file`` (lazy load)
        self._booster = booster
        #: where a lazily loaded model reads its booster, and the function giving LightGBM
        self._booster_file: str | None = None
        self._lightgbm: Callable[[], Any] | None = None
        self.calibrator = calibrator
        self.features = list(features)
        self.categorical = list(categorical)
        self.categories = {k: list(v) for k, v in categories.items()}
        self.readable_names = dict(readable_names)
        self.metadata = dict(metadata or {})

    @property
    def booster(self) -> Any:
        """The raw LightGBM booster; a model loaded with ``lazy=True`` reads it here, once."""
        booster = self.__dict__.get("_booster")
        if booster is None:
            # a model pickled before boosters could be read lazily kept it as ``booster``
            booster = self.__dict__.get("booster")
        if booster is None:
            with _BOOSTER_LOCK:
                booster = self.__dict__.get("_booster")
                if booster is None:
                    booster = _read_booster(self._booster_file, self._lightgbm)
        self._booster = booster
        return booster

    @booster.setter
    def booster(self, value: Any) -> None:
        self._booster = value

    @property
    def booster_loaded(self) -> bool:
        return self.__dict__.get("_booster") is not None or "booster" in self.__dict__

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
        """Write the model as ``booster.txt`` (LightGBM's text model) and ``model.json`` (the
        calibrator's plain parameters, features, categories, names, metadata) in ``folder``
        (created); :meth:`load` reads them back without scikit-learn."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / BOOSTER_FILE).write_text(self.booster.model_to_string())
        description = {
            "name": self.name,
            "calibration": self.calibrator.method,
            "calibrator": self.calibrator.to_json(),
            "features": self.features,
            "categorical": self.categorical,
            "categories": self.categories,
            "readable_names": self.readable_names,
            "metadata": self.metadata,
        }
        (folder / DESCRIPTION_FILE).write_text(
            json.dumps(description, indent=1, default=_plain_json)
        )
        return folder

    @classmethod
    def load(
        cls, folder: str | Path, *, lazy: bool = False, lightgbm: Callable[[], Any] | None = None
    ) -> SalesPilotModel:
        """The model :meth:`save` wrote in ``folder``. With ``lazy`` the booster's text is
        parsed on first use (:attr:`booster`), not here; ``lightgbm`` returns the module to
        parse it with (default ``import lightgbm``)."""
        folder = Path(folder)
        booster_file = str(folder / BOOSTER_FILE)
        description = json.loads((folder / DESCRIPTION_FILE).read_text())
        if "calibrator" in description:
            calibrator = Calibrator.from_json(description["calibrator"])
        else:  # saved with the calibrator's pickled scikit-learn estimator
            import pickle

            calibrator = Calibrator(description["calibration"])
            with open(folder / CALIBRATOR_FILE, "rb") as f:
                calibrator.estimator_ = pickle.load(f)
        model = cls(
            name=description["name"],
            booster=None if lazy else _read_booster(booster_file, lightgbm),
            calibrator=calibrator,
            features=description["features"],
            categorical=description["categorical"],
            categories=description["categories"],
            readable_names=description["readable_names"],
            metadata=description["metadata"],
        )
        model._booster_file, model._lightgbm = booster_file, lightgbm
        return model


def _read_booster(path: str | None, lightgbm: Callable[[], Any] | None) -> Any:
    if path is None:
        raise ValueError("this model has no booster and no booster file to read it from")
    lgb = lightgbm() if lightgbm is not None else importlib.import_module("lightgbm")
    return lgb.Booster(model_file=path)


def _plain_json(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


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
