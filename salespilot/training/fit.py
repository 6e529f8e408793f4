"""LightGBM fit with early stopping and the choice of probability calibration.

What it fits is a :class:`~salespilot.training.scoring.SalesPilotModel` (booster, calibrator,
features, categories, readable names): the scoring half, in its own module so that every
registered model ships it. ``Calibrator``, ``SalesPilotModel`` and ``prepare_features`` are
importable from here too (model versions registered before the split pickled them here).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from salespilot.training.scoring import (  # noqa: F401 (SalesPilotModel: older pickles)
    CALIBRATION_METHODS,
    Calibrator,
    SalesPilotModel,
    _sigmoid,
    prepare_features,
)

log = logging.getLogger(__name__)


def choose_calibration(raw: np.ndarray, y: np.ndarray, *, folds: int = 4) -> tuple[str, dict]:
    """Pick the calibration with the lowest out-of-fold log loss on the validation rows.

    Cross-fitting inside the validation period matters: scored on the rows it was fitted on,
    isotonic regression always looks best. A more complex method must win by a clear margin.
    """
    from sklearn.metrics import log_loss
    from sklearn.model_selection import StratifiedKFold

    raw = np.asarray(raw, dtype=float)
    y = np.asarray(y, dtype=int)
    n_min = int(min(y.sum(), len(y) - y.sum()))
    if n_min < folds:
        return "none", {"none": float(log_loss(y, _sigmoid(raw), labels=[0, 1]))}
    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=0)
    losses: dict[str, float] = {}
    for method in CALIBRATION_METHODS:
        oof = np.empty(len(y))
        for fit_idx, out_idx in cv.split(raw.reshape(-1, 1), y):
            oof[out_idx] = Calibrator(method).fit(raw[fit_idx], y[fit_idx]).predict(raw[out_idx])
        losses[method] = float(log_loss(y, oof, labels=[0, 1]))
    best = "none"
    for method in ("sigmoid", "isotonic"):  # simpler first; the next must beat it clearly
        if losses[method] < losses[best] - 1e-3:
            best = method
    return best, losses


def learn_categories(frame: pd.DataFrame, categorical: list[str]) -> dict[str, list]:
    """The sorted distinct values of each categorical column (as strings)."""
    cats = {}
    for c in categorical:
        vals = frame[c].dropna().astype(str).unique().tolist()
        cats[c] = sorted(vals)
    return cats


#: A leaf never needs more than this share of the training rows: a ``min_data_in_leaf`` tuned
#: on a large history (hundreds of rows a leaf) would forbid every split on a small one.
MAX_LEAF_SHARE = 0.1
#: ... and always holds about this many examples of the rarer class (at its training rate): a
#: leaf's value is a rate, and one estimated from two or three positives is noise that
#: calibration cannot undo. Rare positives mean fewer, larger leaves.
MIN_LEAF_MINORITY = 10
_LIGHTGBM_MIN_DATA_IN_LEAF = 20  # LightGBM's own default


def leaf_size(requested: int, *, n_rows: int, n_minority: int) -> int:
    """``min_data_in_leaf`` for a training set of ``n_rows`` with ``n_minority`` examples of
    its rarer class (the positives, mostly): the spec's ``requested`` size, capped at
    :data:`MAX_LEAF_SHARE` of the rows, raised to the rows that hold :data:`MIN_LEAF_MINORITY`
    examples of the rarer class, and never above half the rows (one split stays possible).

    40 positives in 400 rows: leaves of 100 rows (about 10 positives each), not the 40 the
    row cap alone would give; 10,000 positives in 40,000 rows: the spec's own size.
    """
    n_rows = max(int(n_rows), 1)
    capped = min(int(requested), max(1, int(n_rows * MAX_LEAF_SHARE)))
    holds_minority = math.ceil(MIN_LEAF_MINORITY * n_rows / max(int(n_minority), 1))
    return max(1, min(max(capped, holds_minority), n_rows // 2))


class UnknownParamsError(ValueError):
    """``--params`` named keys LightGBM does not know; the message lists them."""


def check_lightgbm_params(params: Mapping[str, Any]) -> None:
    """Raise :class:`UnknownParamsError` for keys that are no LightGBM parameter or alias
    (LightGBM itself would ignore them silently, e.g. ``horizon_days``)."""
    from lightgbm.basic import _ConfigAliases

    aliases = _ConfigAliases._get_all_param_aliases()
    known = set(aliases) | {a for names in aliases.values() for a in names}
    unknown = sorted(k for k in params if k not in known)
    if unknown:
        hint = ""
        if "horizon_days" in unknown:
            hint = (
                f" The label horizon is not a LightGBM parameter: use --horizon-days "
                f"{params['horizon_days']} (or the horizon_days setting)."
            )
        raise UnknownParamsError(
            f"unknown LightGBM parameter(s) {', '.join(map(repr, unknown))} in --params; "
            "give LightGBM parameters only (e.g. num_leaves=7, learning_rate=0.1), see "
            "https://lightgbm.readthedocs.io/en/latest/Parameters.html." + hint
        )


def _train_params(
    params: Mapping[str, Any],
    features: list[str],
    monotone: Mapping[str, int] | None,
    y: np.ndarray,
) -> dict[str, Any]:
    """LightGBM parameters for training on labels ``y``: the leaf size from :func:`leaf_size`
    (whichever alias of ``min_data_in_leaf`` the parameters use), the monotone constraints
    in feature order."""
    from lightgbm.basic import _ConfigAliases

    params = {"metric": "binary_logloss", **params}
    # in the parameters' order: a later ``--params min_child_samples=...`` overrides the spec
    names = _ConfigAliases.get("min_data_in_leaf")
    requested = [params.pop(k) for k in [k for k in params if k in names]]
    y = np.asarray(y)
    positives = int((y == 1).sum())
    params["min_data_in_leaf"] = leaf_size(
        int(requested[-1]) if requested else _LIGHTGBM_MIN_DATA_IN_LEAF,
        n_rows=len(y),
        n_minority=min(positives, len(y) - positives),
    )
    if monotone and "monotone_constraints" not in params:
        params["monotone_constraints"] = [int(monotone.get(f, 0)) for f in features]
    return params


def _matrix(
    frame: pd.DataFrame, features: list[str], categorical: list[str], categories: Mapping[str, list]
) -> pd.DataFrame:
    # only the model's columns are converted: the feature table carries many more
    x = frame[features]
    return prepare_features(
        x.astype({c: "object" for c in categorical if c in x}), features, categories
    )


def _dataset(
    frame: pd.DataFrame,
    y: np.ndarray,
    features: list[str],
    categorical: list[str],
    categories: Mapping[str, list],
    reference: Any = None,
) -> Any:
    import lightgbm as lgb

    x = _matrix(frame, features, categorical, categories)
    if reference is not None:
        return lgb.Dataset(x, label=y, reference=reference)
    return lgb.Dataset(x, label=y, categorical_feature=categorical or "auto", free_raw_data=False)


def fit_lightgbm(
    train: pd.DataFrame,
    y_train: np.ndarray,
    valid: pd.DataFrame,
    y_valid: np.ndarray,
    *,
    features: list[str],
    categorical: list[str],
    params: Mapping[str, Any],
    num_boost_round: int,
    early_stopping_rounds: int,
    monotone: Mapping[str, int] | None = None,
    client: Any = None,
) -> tuple[Any, dict[str, list]]:
    """Train a booster on ``train``, early-stopped on the validation log loss.

    Returns the booster (trimmed to its best iteration) and the learned categories. With a
    Dask ``client`` the trees grow on its cluster (:mod:`salespilot.training.distributed`).
    """
    import lightgbm as lgb

    categories = learn_categories(train, categorical)
    params = _train_params(params, features, monotone, y_train)
    rounds = int(params.pop("num_boost_round", num_boost_round))
    if client is not None:
        from salespilot.training.distributed import dask_train

        booster = dask_train(
            params,
            _matrix(train, features, categorical, categories),
            y_train,
            client=client,
            num_boost_round=rounds,
            valid=(_matrix(valid, features, categorical, categories), y_valid),
            early_stopping_rounds=early_stopping_rounds,
        )
        return booster, categories
    dtrain = _dataset(train, y_train, features, categorical, categories)
    dvalid = _dataset(valid, y_valid, features, categorical, categories, reference=dtrain)
    booster = lgb.train(
        params,
        dtrain,
        num_boost_round=rounds,
        valid_sets=[dvalid],
        valid_names=["valid"],
        callbacks=[lgb.early_stopping(early_stopping_rounds, verbose=False)],
    )
    # Keep only the trees up to the best iteration so every later predict uses them by default.
    best = booster.best_iteration or booster.current_iteration()
    booster = lgb.Booster(model_str=booster.model_to_string(num_iteration=best))
    return booster, categories


def refit_lightgbm(
    frame: pd.DataFrame,
    y: np.ndarray,
    *,
    features: list[str],
    categorical: list[str],
    params: Mapping[str, Any],
    num_boost_round: int,
    monotone: Mapping[str, int] | None = None,
    client: Any = None,
) -> tuple[Any, dict[str, list]]:
    """Train a booster on ``frame`` for exactly ``num_boost_round`` trees (no early stopping).

    Used to refit on training and validation periods together once the validation period has
    chosen the number of trees: the most recent labelled weeks are the most like the future.
    """
    import lightgbm as lgb

    categories = learn_categories(frame, categorical)
    params = _train_params(params, features, monotone, y)
    params.pop("num_boost_round", None)
    rounds = max(int(num_boost_round), 1)
    if client is not None:
        from salespilot.training.distributed import dask_train

        x = _matrix(frame, features, categorical, categories)
        return dask_train(params, x, y, client=client, num_boost_round=rounds), categories
    data = _dataset(frame, y, features, categorical, categories)
    return lgb.train(params, data, num_boost_round=rounds), categories
