"""Training machinery every model shares: split, fit, calibrate, evaluate, track, promote.

The public API is small:

* :func:`train_model` (``spec, history, settings``) -> :class:`TrainResult`
* :func:`load_model` (``name, alias="champion", settings``) -> :class:`LoadedModel` with
  ``predict_proba``, ``raw_score``, ``contributions``, ``features``, ``readable_names``,
  ``version``, ``metrics``, ``trained_at``
* :func:`promote`, :func:`rollback`, :func:`compare` on the MLflow registry.

Heavy libraries (MLflow, LightGBM, SHAP) are imported only when these are called.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from salespilot.training.checks import NotEnoughDataError
    from salespilot.training.loading import LoadedModel, load_model
    from salespilot.training.promotion import promote, rollback
    from salespilot.training.split import SplitError
    from salespilot.training.tracking import RegistryError, compare
    from salespilot.training.train import MissingTablesError, TrainResult, train_model

_EXPORTS = {
    "train_model": "salespilot.training.train",
    "TrainResult": "salespilot.training.train",
    "MissingTablesError": "salespilot.training.train",
    "load_model": "salespilot.training.loading",
    "LoadedModel": "salespilot.training.loading",
    "RegistryError": "salespilot.training.tracking",
    "promote": "salespilot.training.promotion",
    "rollback": "salespilot.training.promotion",
    "compare": "salespilot.training.tracking",
    "NotEnoughDataError": "salespilot.training.checks",
    "SplitError": "salespilot.training.split",
}


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'salespilot.training' has no attribute {name!r}")


__all__ = [
    "LoadedModel",
    "MissingTablesError",
    "NotEnoughDataError",
    "RegistryError",
    "SplitError",
    "TrainResult",
    "compare",
    "load_model",
    "promote",
    "rollback",
    "train_model",
]
