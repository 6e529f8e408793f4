"""Split, fit, calibrate, evaluate: the MLflow-free heart of a training run.

:func:`fit_and_evaluate` takes a labelled feature table (one row per entity x ``as_of``) and
returns an :class:`Evaluation` holding the model, the split, test metrics beside the baselines
and (when the truth is known) the oracle. :mod:`salespilot.training.train` adds the history,
MLflow and the registry around it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from salespilot.models.spec import ModelSpec
from salespilot.training import baselines, checks, readiness
from salespilot.training.evaluate import binary_metrics
from salespilot.training.fit import (
    Calibrator,
    SalesPilotModel,
    choose_calibration,
    fit_lightgbm,
    refit_lightgbm,
)
from salespilot.training.split import TimeSplit, decision_split, time_split

log = logging.getLogger(__name__)

OracleFn = Callable[[pd.DataFrame], np.ndarray | None]
SlotFn = Callable[[SalesPilotModel, pd.DataFrame, pd.DataFrame], dict[str, float]]


@dataclass
class Evaluation:
    """Everything one fit produced, before anything is logged."""

    spec: ModelSpec
    model: SalesPilotModel
    split: TimeSplit
    metrics: dict[str, float]
    baselines: dict[str, dict[str, float]]
    oracle: dict[str, float] | None
    calibration: str
    calibration_losses: dict[str, float]
    best_iteration: int
    warnings: list[str]
    test: pd.DataFrame
    y_test: np.ndarray
    p_test: np.ndarray
    baseline_p: dict[str, np.ndarray] = field(default_factory=dict)
    oracle_p: np.ndarray | None = None
    single_feature_auc: dict[str, float] = field(default_factory=dict)
    #: the warnings of leak checks that fired at error level (they make the version not_ready)
    error_leaks: list[str] = field(default_factory=list)
    #: features named for review (possible after-the-fact fields), see checks.review_warnings
    leak_review: list[str] = field(default_factory=list)
    readiness: readiness.Readiness | None = None

    @property
    def oracle_gap(self) -> float | None:
        """Oracle ROC AUC minus model ROC AUC on the same test rows (None without truth)."""
        if not self.oracle:
            return None
        return float(self.oracle["roc_auc"] - self.metrics["roc_auc"])


def labelled_rows(spec: ModelSpec, frame: pd.DataFrame) -> pd.DataFrame:
    """Rows whose label is known, sorted by time (stable), with every spec column checked."""
    needed = [spec.time_column, spec.label]
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise KeyError(f"{spec.name}: the {spec.table} table lacks columns {missing}")
    absent = [f for f in spec.features if f not in frame.columns]
    if absent:
        raise KeyError(
            f"{spec.name}: the {spec.table} table lacks feature columns {absent}; "
            "update the spec's features or the feature builder"
        )
    rows = frame[frame[spec.label].notna()]
    return rows.sort_values(spec.time_column, kind="stable").reset_index(drop=True)


def fit_and_evaluate(
    spec: ModelSpec,
    frame: pd.DataFrame,
    *,
    oracle: OracleFn | None = None,
    slots: SlotFn | None = None,
    test_fraction: float = 0.2,
    valid_fraction: float = 0.2,
) -> Evaluation:
    """Train ``spec`` on ``frame`` with a time split; metrics for model, baselines and oracle.

    Raises :class:`~salespilot.training.checks.NotEnoughDataError` (with the counts) when a
    period is short of examples, before any tree is grown.
    """
    rows = labelled_rows(spec, frame)
    y = rows[spec.label].astype(int).to_numpy()
    if spec.rows == "decision":
        split = decision_split(
            rows[spec.time_column],
            rows["resolved_at"],
            groups=rows["account_id"] if "account_id" in rows.columns else None,
            test_fraction=test_fraction,
            valid_fraction=valid_fraction,
        )
    else:
        split = time_split(
            rows[spec.time_column],
            horizon_days=spec.horizon_days,
            test_fraction=test_fraction,
            valid_fraction=valid_fraction,
        )
    y_train, y_valid, y_test = y[split.train], y[split.valid], y[split.test]
    checks.check_min_data(spec, train=y_train, valid=y_valid, test=y_test)
    train, valid, test = rows[split.train], rows[split.valid], rows[split.test]

    warnings: list[str] = []
    single = checks.single_feature_aucs(train, y_train, list(spec.features), list(spec.categorical))
    warnings += checks.leak_warnings_from(spec, single)
    warnings += checks.outcome_leak_warnings(spec, train, warnings)

    booster, categories = fit_lightgbm(
        train,
        y_train,
        valid,
        y_valid,
        features=list(spec.features),
        categorical=list(spec.categorical),
        params=dict(spec.params),
        num_boost_round=spec.num_boost_round,
        early_stopping_rounds=spec.early_stopping_rounds,
        monotone=dict(spec.monotone),
    )
    uncalibrated = SalesPilotModel(
        name=spec.name,
        booster=booster,
        calibrator=Calibrator("none").fit(np.zeros(1), np.zeros(1)),
        features=list(spec.features),
        categorical=list(spec.categorical),
        categories=categories,
        readable_names={f: spec.readable_names[f] for f in spec.features},
    )
    raw_valid = uncalibrated.raw_score(valid)
    method, losses = choose_calibration(raw_valid, y_valid)
    calibrator = Calibrator(method).fit(raw_valid, y_valid)
    best_iteration = int(booster.current_iteration())
    both = split.train | split.valid
    if spec.refit_on_validation:
        # same trees per row as early stopping chose; the calibrator learned on the validation
        # period's out-of-sample scores carries over (the test metrics check that it does)
        rounds = round(best_iteration * both.sum() / max(int(split.train.sum()), 1))
        booster, categories = refit_lightgbm(
            rows[both],
            y[both],
            features=list(spec.features),
            categorical=list(spec.categorical),
            params=dict(spec.params),
            num_boost_round=rounds,
            monotone=dict(spec.monotone),
        )
    model = SalesPilotModel(
        name=spec.name,
        booster=booster,
        calibrator=calibrator,
        features=list(spec.features),
        categorical=list(spec.categorical),
        categories=categories,
        readable_names=uncalibrated.readable_names,
        metadata={
            "label": spec.label,
            "entity": spec.entity,
            "horizon_days": spec.horizon_days,
            "calibration": method,
            "best_iteration": best_iteration,
            "trees": int(booster.current_iteration()),
            "refit_on_validation": spec.refit_on_validation,
        },
    )

    p_test = model.predict_proba(test)
    metrics = binary_metrics(y_test, p_test)
    # the baselines learn from the same rows as the model
    fit_rows, y_fit = (rows[both], y[both]) if spec.refit_on_validation else (train, y_train)
    baseline_p = {
        "logistic_regression": baselines.logistic_regression(spec, fit_rows, y_fit, test),
        spec.baseline_rule.name: baselines.rule_baseline(spec, fit_rows, y_fit, test),
    }
    base_metrics = {name: binary_metrics(y_test, p) for name, p in baseline_p.items()}

    oracle_p = oracle(test) if oracle is not None else None
    oracle_metrics = binary_metrics(y_test, oracle_p) if oracle_p is not None else None

    if slots is not None:
        slot = slots(model, fit_rows, test)
        metrics.update(slot)
        if oracle_metrics is not None:
            oracle_metrics.update({"slot_regret": 0.0, "slot_share_of_best": 1.0})

    warning = checks.suspicious_auc_warning(spec, metrics["roc_auc"])
    if warning:
        warnings.append(warning)
    error_leaks = list(warnings)
    review, review_names = checks.review_warnings(
        spec,
        single,
        checks.missingness_aucs(train, y_train, list(spec.features)),
        checks.gain_shares(booster),
        error_leaks,
    )
    warnings += review
    for w in warnings:
        log.warning(w)
    verdict = readiness.judge(
        y_test=y_test,
        p_test=p_test,
        baseline_auc=base_metrics["logistic_regression"]["roc_auc"],
        error_leaks=error_leaks,
        positive_name=spec.positive_name,
        negative_name=spec.negative_name,
    )

    return Evaluation(
        spec=spec,
        model=model,
        split=split,
        metrics=metrics,
        baselines=base_metrics,
        oracle=oracle_metrics,
        calibration=method,
        calibration_losses=losses,
        best_iteration=best_iteration,
        warnings=warnings,
        test=test,
        y_test=y_test,
        p_test=p_test,
        baseline_p=baseline_p,
        oracle_p=oracle_p,
        single_feature_auc=single,
        error_leaks=error_leaks,
        leak_review=review_names,
        readiness=verdict,
    )


def summary(evaluation: Evaluation) -> dict[str, Any]:
    """The evaluation as plain JSON-able values (NaN becomes None)."""

    def clean(d: dict[str, float] | None) -> dict[str, float | None] | None:
        if d is None:
            return None
        return {k: (None if v is None or not np.isfinite(v) else float(v)) for k, v in d.items()}

    return {
        "metrics": clean(evaluation.metrics),
        "baselines": {k: clean(v) for k, v in evaluation.baselines.items()},
        "oracle": clean(evaluation.oracle),
        "oracle_gap": evaluation.oracle_gap,
        "calibration": evaluation.calibration,
        "best_iteration": evaluation.best_iteration,
        "split": evaluation.split.describe(),
        "warnings": list(evaluation.warnings),
        "readiness": None if evaluation.readiness is None else evaluation.readiness.to_json(),
        "calibration_curve": calibration_points(evaluation),
    }


def calibration_points(evaluation: Evaluation) -> dict[str, list[float]] | None:
    """The model's calibration curve on the test rows (10 quantile bins), for the models page."""
    from sklearn.calibration import calibration_curve

    try:
        observed, predicted = calibration_curve(
            evaluation.y_test, evaluation.p_test, n_bins=10, strategy="quantile"
        )
    except ValueError:  # a single class in the test rows: no curve
        return None
    return {
        "predicted": [round(float(v), 4) for v in predicted],
        "observed": [round(float(v), 4) for v in observed],
    }
