"""Baselines scored on the same test rows as the model, so its gain is always visible.

* ``logistic_regression``: a scikit-learn pipeline on the same features (imputation with
  missing-value indicators, scaling, one-hot categoricals), fitted on at most
  :data:`LOGISTIC_MAX_ROWS` training rows and scored on every test row.
* ``deal_age_baseline`` (win model): the deal's age alone, for the won-against-lost check of
  :mod:`~salespilot.training.readiness`.
* the no-model rule of the spec (:class:`~salespilot.models.spec.BaselineRule`): what a sales
  team does today - the CRM's probability per stage, days since the last contact, the rep's
  usual calling hour - turned into a probability on the training period so that calibration
  metrics are comparable too.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, QuantileTransformer, StandardScaler
from threadpoolctl import threadpool_limits

from salespilot.models.spec import BaselineRule, ModelSpec


def one_blas_thread() -> threadpool_limits:
    """Scikit-learn's fits here (the baselines, the calibrators) on one BLAS thread: on
    matrices this small, BLAS threads waiting for each other on busy cores cost up to 8x the
    fit, for the same iterations and coefficients. LightGBM keeps its own (OpenMP) threads."""
    return threadpool_limits(1, user_api="blas")


def _as_object(frame: pd.DataFrame, cols: list[str]) -> pd.DataFrame:
    out = frame.copy()
    for c in cols:
        out[c] = out[c].astype("object").where(out[c].notna(), "(missing)").astype(str)
    return out


def logistic_regression_pipeline(numeric: list[str], categorical: list[str]) -> Pipeline:
    """The logistic-regression baseline: same features, linear model."""
    steps = []
    if numeric:
        steps.append(
            (
                "numeric",
                make_pipeline(
                    SimpleImputer(strategy="median", add_indicator=True),
                    # counts and durations are heavy-tailed: ranks keep the linear model sane
                    QuantileTransformer(
                        n_quantiles=200, output_distribution="normal", random_state=0
                    ),
                    StandardScaler(),
                ),
                numeric,
            )
        )
    if categorical:
        steps.append(
            (
                "categorical",
                OneHotEncoder(handle_unknown="infrequent_if_exist", min_frequency=20),
                categorical,
            )
        )
    return Pipeline(
        [
            ("features", ColumnTransformer(steps)),
            ("model", LogisticRegression(C=1.0, max_iter=2000, random_state=0)),
        ]
    )


#: the logistic-regression baseline learns from at most this many training rows (a seeded
#: sample; the test rows are all scored): its cost stops growing with the history while its
#: test ROC AUC stays within about 0.005 of the fit on every row
LOGISTIC_MAX_ROWS = 5_000


def baseline_sample(y: np.ndarray, max_rows: int = LOGISTIC_MAX_ROWS) -> np.ndarray:
    """Positions of the training rows the logistic baseline learns from: all of them up to
    ``max_rows``, else a seeded sample of about ``max_rows`` holding each class in its share
    (at least one row of each), in row order."""
    y = np.asarray(y)
    if len(y) <= max_rows:
        return np.arange(len(y))
    rng = np.random.default_rng(0)
    picks = []
    for value in np.unique(y):
        at = np.flatnonzero(y == value)
        k = min(len(at), max(1, round(max_rows * len(at) / len(y))))
        picks.append(rng.choice(at, k, replace=False))
    return np.sort(np.concatenate(picks))


def logistic_regression(
    spec: ModelSpec, train: pd.DataFrame, y_train: np.ndarray, test: pd.DataFrame
) -> np.ndarray:
    """Fit the logistic baseline on the training period (at most :data:`LOGISTIC_MAX_ROWS`
    of its rows, see :func:`baseline_sample`); probabilities for every ``test`` row."""
    rows = baseline_sample(y_train)
    if len(rows) < len(train):
        train, y_train = train.iloc[rows], np.asarray(y_train)[rows]
    numeric = [f for f in spec.features if f not in spec.categorical]
    categorical = list(spec.categorical)
    x_train = _as_object(train[list(spec.features)], categorical)
    x_test = _as_object(test[list(spec.features)], categorical)
    for c in numeric:
        x_train[c] = pd.to_numeric(x_train[c], errors="coerce").astype(float)
        x_test[c] = pd.to_numeric(x_test[c], errors="coerce").astype(float)
    # A column that is all-missing in training carries nothing and would trip the imputer.
    numeric = [c for c in numeric if x_train[c].notna().any()]
    pipe = logistic_regression_pipeline(numeric, categorical)
    with one_blas_thread():
        pipe.fit(x_train, y_train)
        return pipe.predict_proba(x_test)[:, 1]


def _per_category_rate(
    column: str, train: pd.DataFrame, y_train: np.ndarray, test: pd.DataFrame
) -> np.ndarray:
    prior = float(np.mean(y_train))
    key_train = train[column].astype("object").where(train[column].notna(), "(missing)").astype(str)
    rates = pd.Series(y_train, index=train.index).groupby(key_train.to_numpy()).mean()
    key_test = test[column].astype("object").where(test[column].notna(), "(missing)").astype(str)
    return key_test.map(rates).fillna(prior).to_numpy(dtype=float)


def monotone_score(
    column: str, train: pd.DataFrame, y_train: np.ndarray, test: pd.DataFrame
) -> np.ndarray:
    """One numeric column alone, turned into a probability by isotonic regression (direction
    learned on ``train``; missing values count as the largest seen)."""
    x_train = pd.to_numeric(train[column], errors="coerce").astype(float)
    fill = float(x_train.max()) if x_train.notna().any() else 0.0  # never contacted = longest ago
    iso = IsotonicRegression(out_of_bounds="clip", increasing="auto")
    iso.fit(x_train.fillna(fill).to_numpy(), y_train)
    x_test = pd.to_numeric(test[column], errors="coerce").astype(float).fillna(fill)
    return iso.predict(x_test.to_numpy())


def usual_hours(frame: pd.DataFrame, rep_column: str, hour_column: str) -> pd.Series:
    """Each rep's most frequent calling hour (ties: the earliest hour)."""
    counts = (
        frame.groupby([rep_column, hour_column], observed=True).size().rename("n").reset_index()
    )
    counts = counts.sort_values([rep_column, "n", hour_column], ascending=[True, False, True])
    return counts.drop_duplicates(rep_column).set_index(rep_column)[hour_column]


def _usual_hour(
    spec: ModelSpec, train: pd.DataFrame, y_train: np.ndarray, test: pd.DataFrame
) -> np.ndarray:
    slot = spec.slot_evaluation
    hour_col = slot.hour_column if slot else "local_hour"
    rep_col = spec.baseline_rule.column
    usual = usual_hours(train, rep_col, hour_col)

    def at_usual(frame: pd.DataFrame) -> np.ndarray:
        return (frame[rep_col].map(usual) == frame[hour_col]).fillna(False).to_numpy(dtype=bool)

    a_train, a_test = at_usual(train), at_usual(test)
    prior = float(np.mean(y_train))
    rate_at = float(np.mean(y_train[a_train])) if a_train.any() else prior
    rate_off = float(np.mean(y_train[~a_train])) if (~a_train).any() else prior
    return np.where(a_test, rate_at, rate_off)


def rule_without_data(spec: ModelSpec, train: pd.DataFrame) -> str | None:
    """Why the spec's no-model rule has nothing to stand on in ``train``, or None.

    A rule on a column that is missing on every row, or holds one value (every deal in the
    same stage: an export without stage history), scores every row alike - a constant 0.5
    ROC AUC that reads like a baseline but measures nothing. It is left out and said to be.
    """
    rule: BaselineRule = spec.baseline_rule
    if rule.kind == "usual_hour":
        return None
    if rule.column not in train.columns:
        return f"the {rule.name} is left out: the rows have no {rule.column!r} column"
    values = train[rule.column].dropna()
    if values.empty:
        return f"the {rule.name} is left out: {rule.column!r} is missing on every training row"
    distinct = values.astype(str).unique()
    if len(distinct) == 1:
        return (
            f"the {rule.name} is left out: every training row has the same {rule.column!r} "
            f"({distinct[0]!r}), so it would score every row alike"
        )
    return None


def rule_baseline(
    spec: ModelSpec, train: pd.DataFrame, y_train: np.ndarray, test: pd.DataFrame
) -> np.ndarray:
    """Probabilities of the spec's no-model rule for the ``test`` rows."""
    rule: BaselineRule = spec.baseline_rule
    if rule.column not in train.columns:
        raise KeyError(f"{spec.name}: the {rule.name} needs column {rule.column!r}")
    if rule.kind == "per_category_rate":
        return _per_category_rate(rule.column, train, y_train, test)
    if rule.kind == "monotone_score":
        return monotone_score(rule.column, train, y_train, test)
    if rule.kind == "usual_hour":
        return _usual_hour(spec, train, y_train, test)
    raise ValueError(f"unknown rule kind {rule.kind!r}")


def deal_age_baseline(
    spec: ModelSpec, train: pd.DataFrame, y_train: np.ndarray, test: pd.DataFrame
) -> np.ndarray:
    """The deal's age as of the decision time (``spec.extra["age_feature"]``) alone, fitted on
    ``train`` and scored on ``test``: what timing alone tells."""
    return monotone_score(spec.extra["age_feature"], train, y_train, test)
