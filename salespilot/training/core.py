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
from salespilot.training.accounting import RowAccount, account_rows
from salespilot.training.evaluate import binary_metrics
from salespilot.training.fit import choose_calibration, fit_lightgbm, refit_lightgbm
from salespilot.training.scoring import Calibrator, SalesPilotModel
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
    #: baselines with no data to stand on (a stage rule without stages): name -> why
    baselines_left_out: dict[str, str] = field(default_factory=dict)
    #: where every candidate row went (periods used, rows left out and why)
    row_account: RowAccount | None = None

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
    warm_up: pd.Series | None = None,
    client: Any = None,
) -> Evaluation:
    """Train ``spec`` on ``frame`` with a time split; metrics for model, baselines and oracle.
    With a Dask ``client`` the boosters grow on its cluster (the rest runs here).

    Rows of ``frame`` without a label are left out as the unlabelled end; ``warm_up`` holds
    the entity ids of candidate rows the grid's warm-up left out before ``frame`` was built
    (for the run's row account, :mod:`~salespilot.training.accounting`).

    Raises :class:`~salespilot.training.checks.NotEnoughDataError` (with the counts) when a
    period is short of examples, before any tree is grown.
    """
    with baselines.one_blas_thread():
        return _fit_and_evaluate(
            spec,
            frame,
            oracle=oracle,
            slots=slots,
            test_fraction=test_fraction,
            valid_fraction=valid_fraction,
            warm_up=warm_up,
            client=client,
        )


def _fit_and_evaluate(
    spec: ModelSpec,
    frame: pd.DataFrame,
    *,
    oracle: OracleFn | None,
    slots: SlotFn | None,
    test_fraction: float,
    valid_fraction: float,
    warm_up: pd.Series | None,
    client: Any,
) -> Evaluation:
    checks.check_some_label_known(spec, frame)
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
    row_account = None
    if spec.entity in frame.columns:
        row_account = account_rows(
            spec.entity,
            rows,
            split,
            unlabelled=frame.loc[frame[spec.label].isna(), spec.entity],
            warm_up=warm_up,
        )
    y_train, y_valid, y_test = y[split.train], y[split.valid], y[split.test]
    checks.check_min_data(spec, account=row_account, train=y_train, valid=y_valid, test=y_test)
    train, valid, test = rows[split.train], rows[split.valid], rows[split.test]

    warnings: list[str] = []
    single = checks.single_feature_aucs(train, y_train, list(spec.features), list(spec.categorical))
    warnings += checks.leak_warnings_from(spec, single)
    warnings += checks.outcome_leak_warnings(spec, train, warnings)

    spec, booster, categories = _fit_chosen_trees(
        spec, train, y_train, valid, y_valid, client=client
    )
    best_iteration = int(booster.current_iteration())
    if spec.refit_on_validation:
        booster, categories, raw_valid = _refit_with_held_out_scores(
            spec, rows, y, split, best_iteration, client=client
        )
    else:
        raw_valid = _model(spec, booster, categories).raw_score(valid)
    # the calibrator maps the scores of the booster it is served with: learned on the latest
    # labelled period (validation), from scores of rows that booster (or, refitted, boosters
    # of its configuration) never saw; the test period checks it
    method, losses = choose_calibration(raw_valid, y_valid)
    calibrator = Calibrator(method).fit(raw_valid, y_valid)
    both = split.train | split.valid
    model = _model(
        spec,
        booster,
        categories,
        calibrator,
        metadata={
            "label": spec.label,
            "entity": spec.entity,
            "horizon_days": spec.horizon_days,
            "calibration": method,
            "best_iteration": best_iteration,
            "trees": int(booster.current_iteration()),
            "refit_on_validation": spec.refit_on_validation,
            # what a row is: serving scores an entity the way the model learned it (an open
            # deal of a decision-row model as of its decision time, see deals.py)
            "rows": spec.rows,
            "decision_at": spec.decision_at,
        },
    )

    p_test = model.predict_proba(test)
    metrics = binary_metrics(y_test, p_test)
    # the baselines learn from the same rows as the model
    fit_rows, y_fit = (rows[both], y[both]) if spec.refit_on_validation else (train, y_train)
    baseline_p = {
        "logistic_regression": baselines.logistic_regression(spec, fit_rows, y_fit, test),
    }
    baselines_left_out: dict[str, str] = {}
    rule_gap = baselines.rule_without_data(spec, fit_rows)
    if rule_gap is None:
        baseline_p[spec.baseline_rule.name] = baselines.rule_baseline(spec, fit_rows, y_fit, test)
    else:
        baselines_left_out[spec.baseline_rule.name] = rule_gap
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
        unclosed_with_test_auc(spec, train, test, y_test, p_test),
    )
    warnings += review
    ties = split.cut_ties_warning(spec.name)
    if ties:
        warnings.append(ties)
    for w in warnings:
        log.warning(w)
    verdict = readiness.judge(
        y_test=y_test,
        p_test=p_test,
        baseline_auc=base_metrics["logistic_regression"]["roc_auc"],
        error_leaks=error_leaks,
        positive_name=spec.positive_name,
        negative_name=spec.negative_name,
        won_lost=won_against_lost(spec, fit_rows, y_fit, test, y_test, p_test),
        horizon_days=spec.horizon_days,
        groups=_entities(spec, test),
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
        baselines_left_out=baselines_left_out,
        row_account=row_account,
    )


def unclosed_with_test_auc(
    spec: ModelSpec, train: pd.DataFrame, test: pd.DataFrame, y_test: np.ndarray, p_test: np.ndarray
) -> dict[str, str]:
    """:func:`~salespilot.training.checks.missing_only_unclosed` on the training rows, each
    with the model's test ROC AUC on the test rows where the field is filled in: the number
    without the artefact (on the Maven example, the deals with a real account)."""
    from sklearn.metrics import roc_auc_score

    found = checks.missing_only_unclosed(spec, train, list(spec.features))
    out = {}
    for f, why in found.items():
        present = test[f].notna().to_numpy()
        y = y_test[present]
        if len(y) and y.min() != y.max():
            auc = float(roc_auc_score(y, p_test[present]))
            why += f"; test ROC AUC on the {int(present.sum()):,} test rows where it is filled in: {auc:.3f}"
        out[f] = why
    return out


def _model(
    spec: ModelSpec,
    booster: Any,
    categories: dict[str, list],
    calibrator: Calibrator | None = None,
    metadata: dict[str, Any] | None = None,
) -> SalesPilotModel:
    """``spec``'s model around ``booster`` (uncalibrated: the booster's own sigmoid)."""
    return SalesPilotModel(
        name=spec.name,
        booster=booster,
        calibrator=calibrator or Calibrator("none").fit(np.zeros(1), np.zeros(1)),
        features=list(spec.features),
        categorical=list(spec.categorical),
        categories=categories,
        readable_names={f: spec.readable_names[f] for f in spec.features},
        metadata=metadata,
    )


#: for a decision-row model, trees of one split each (an additive model of the entity's own
#: fields) compete with the spec's trees on the validation period
ADDITIVE_LEAVES = 2
#: ... each split at a random threshold (LightGBM's extremely randomized trees) unless the
#: parameters say otherwise (``--params extra_trees=false``): hundreds of one-split trees then
#: average into smooth shapes of each field, where the best thresholds of a few thousand rows
#: make noisy steps
ADDITIVE_PARAMS = {"num_leaves": ADDITIVE_LEAVES, "extra_trees": True}


def _fit_chosen_trees(
    spec: ModelSpec,
    train: pd.DataFrame,
    y_train: np.ndarray,
    valid: pd.DataFrame,
    y_valid: np.ndarray,
    *,
    client: Any,
) -> tuple[ModelSpec, Any, dict[str, list]]:
    """The booster early-stopped on the validation period, and the spec it was grown with.

    A decision-row model (one row per lead, call or customer, as flat exports give) learns from
    a few thousand rows, often with nothing but the entity's own fields: interactions between
    them are rarely estimable there, and an additive model (trees of one split, each at a random
    threshold: :data:`ADDITIVE_PARAMS`) can rank better. Both are grown, and the one with the
    higher validation ROC AUC is kept (its parameters are the spec's from then on: refit, logged
    on the run); the test period is not looked at.
    Grid rows (a pipeline's weekly snapshots) keep the spec's trees."""
    from salespilot.training.evaluate import roc_auc

    def grow(params: dict[str, Any]) -> tuple[Any, dict[str, list]]:
        return fit_lightgbm(
            train,
            y_train,
            valid,
            y_valid,
            features=list(spec.features),
            categorical=list(spec.categorical),
            params=params,
            num_boost_round=spec.num_boost_round,
            early_stopping_rounds=spec.early_stopping_rounds,
            monotone=dict(spec.monotone),
            client=client,
        )

    booster, categories = grow(dict(spec.params))
    if spec.rows != "decision" or int(spec.params.get("num_leaves", 31)) <= ADDITIVE_LEAVES:
        return spec, booster, categories
    additive_spec = spec.with_params(**{**ADDITIVE_PARAMS, **_extra_trees_of(spec.params)})
    additive, additive_categories = grow(dict(additive_spec.params))

    def valid_auc(b: Any, cats: dict[str, list]) -> float:
        return roc_auc(y_valid, _model(spec, b, cats).raw_score(valid))

    if valid_auc(additive, additive_categories) > valid_auc(booster, categories):
        log.info("%s: trees of one split rank the validation period better", spec.name)
        return additive_spec, additive, additive_categories
    return spec, booster, categories


def _extra_trees_of(params: dict[str, Any]) -> dict[str, Any]:
    """``extra_trees`` as the parameters set it (under any of LightGBM's names for it)."""
    from lightgbm.basic import _ConfigAliases

    names = _ConfigAliases.get("extra_trees")
    given = [v for k, v in params.items() if k in names]
    return {"extra_trees": given[-1]} if given else {}


def _refit_with_held_out_scores(
    spec: ModelSpec,
    rows: pd.DataFrame,
    y: np.ndarray,
    split: TimeSplit,
    best_iteration: int,
    *,
    folds: int = 4,
    client: Any = None,
) -> tuple[Any, dict[str, list], np.ndarray]:
    """The booster refitted on training + validation, the categories it learned, and scores
    of the validation rows from boosters of the same configuration that did not see them.

    Each of ``folds`` boosters learns from the training rows and the other folds of the
    validation period (folds by entity: a deal's weekly snapshots stay together), with the
    trees early stopping chose scaled to its rows, and scores its own fold: what the refitted
    booster's scores on new rows look like, for its calibrator (scikit-learn's
    ``CalibratedClassifierCV(ensemble=False)`` does the same over all rows; here only the
    latest labelled period calibrates). The validation period's scores of the booster that
    learned without it would not do: more trees and more rows move the scores.
    """
    from sklearn.model_selection import GroupKFold

    n_train = max(int(split.train.sum()), 1)

    def refit(mask: np.ndarray) -> tuple[Any, dict[str, list]]:
        return refit_lightgbm(
            rows[mask],
            y[mask],
            features=list(spec.features),
            categorical=list(spec.categorical),
            params=dict(spec.params),
            num_boost_round=round(best_iteration * mask.sum() / n_train),
            monotone=dict(spec.monotone),
            client=client,
        )

    valid_at = np.flatnonzero(split.valid)
    groups = rows[spec.entity].to_numpy() if spec.entity in rows.columns else np.arange(len(rows))
    groups = groups[valid_at]
    held_out = np.empty(len(valid_at))
    n_folds = min(folds, len(pd.unique(groups)))
    for _, out in GroupKFold(n_splits=n_folds).split(valid_at, groups=groups):
        mask = split.train | split.valid
        mask[valid_at[out]] = False
        booster, categories = refit(mask)
        held_out[out] = _model(spec, booster, categories).raw_score(rows.iloc[valid_at[out]])
    booster, categories = refit(split.train | split.valid)
    return booster, categories, held_out


def won_against_lost(
    spec: ModelSpec,
    fit_rows: pd.DataFrame,
    y_fit: np.ndarray,
    test: pd.DataFrame,
    y_test: np.ndarray,
    p_test: np.ndarray,
) -> readiness.WonVsLost | None:
    """The win model's won-against-lost check on the test rows of deals that closed within the
    horizon (``spec.extra["closed_label"]``), beside the deal's age alone fitted on the closed
    rows of the model's own training rows. None for other models or a table without it."""
    closed_col, age_col = spec.extra.get("closed_label"), spec.extra.get("age_feature")
    if not closed_col or not age_col or closed_col not in test.columns:
        return None
    if age_col not in test.columns or closed_col not in fit_rows.columns:
        return None
    closed_test = (test[closed_col] == 1).to_numpy()
    closed_fit = (fit_rows[closed_col] == 1).to_numpy()
    y_closed_fit = y_fit[closed_fit]
    p_age = None  # training rows without both won and lost closes: no age baseline to fit
    if closed_fit.any() and y_closed_fit.min() != y_closed_fit.max():
        p_age = baselines.deal_age_baseline(
            spec, fit_rows[closed_fit], y_closed_fit, test[closed_test]
        )
    groups = _entities(spec, test)
    return readiness.won_vs_lost(
        y_test[closed_test],
        p_test[closed_test],
        p_age,
        groups=None if groups is None else groups[closed_test],
    )


def _entities(spec: ModelSpec, rows: pd.DataFrame) -> np.ndarray | None:
    """Each row's entity (a deal's weekly rows share one), the readiness bootstrap's clusters;
    None when the table has no entity column (each row its own)."""
    if spec.entity not in rows.columns:
        return None
    return rows[spec.entity].to_numpy(dtype=object)


def summary(evaluation: Evaluation) -> dict[str, Any]:
    """The evaluation as plain JSON-able values (NaN becomes None)."""

    def clean(d: dict[str, float] | None) -> dict[str, float | None] | None:
        if d is None:
            return None
        return {k: (None if v is None or not np.isfinite(v) else float(v)) for k, v in d.items()}

    return {
        "horizon_days": evaluation.spec.horizon_days if evaluation.spec.horizon_applies else None,
        "metrics": clean(evaluation.metrics),
        "baselines": {k: clean(v) for k, v in evaluation.baselines.items()},
        "baselines_left_out": dict(evaluation.baselines_left_out),
        "oracle": clean(evaluation.oracle),
        "oracle_gap": evaluation.oracle_gap,
        "calibration": evaluation.calibration,
        "best_iteration": evaluation.best_iteration,
        "split": evaluation.split.describe(),
        "row_accounting": None
        if evaluation.row_account is None
        else evaluation.row_account.to_json(),
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
