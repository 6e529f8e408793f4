"""Checks around training: enough examples, suspiciously good results, single-feature leaks."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold
from sklearn.preprocessing import TargetEncoder

from salespilot.models.spec import ModelSpec

log = logging.getLogger(__name__)


class NotEnoughDataError(ValueError):
    """Too few examples of a class to train or judge a model; the message gives the counts."""


def class_counts(y: np.ndarray) -> tuple[int, int]:
    y = np.asarray(y, dtype=int)
    return int(y.sum()), int(len(y) - y.sum())


def check_min_data(spec: ModelSpec, **periods: np.ndarray) -> None:
    """Raise :class:`NotEnoughDataError` when a period has too few examples of either class.

    The training period needs ``spec.min_examples_per_class`` of each, validation and test
    ``spec.min_eval_examples_per_class`` (they only judge).
    """
    problems = []
    for period, y in periods.items():
        need = (
            spec.min_examples_per_class if period == "train" else spec.min_eval_examples_per_class
        )
        pos, neg = class_counts(y)
        if pos < need or neg < need:
            problems.append(
                f"{period}: {pos} {spec.positive_name} and {neg} {spec.negative_name} "
                f"(needs at least {need} of each)"
            )
    if problems:
        raise NotEnoughDataError(
            f"not enough data to train {spec.name} ({spec.label}, horizon {spec.horizon_days} days): "
            + "; ".join(problems)
            + ". Supply a longer history or one with more closed outcomes."
        )


def suspicious_auc_warning(spec: ModelSpec, auc: float) -> str | None:
    """A warning when the test ROC AUC is too good to be true (usually a leak)."""
    if np.isfinite(auc) and auc > spec.suspicious_auc:
        return (
            f"{spec.name}: test ROC AUC {auc:.3f} is suspiciously high (> {spec.suspicious_auc}); "
            "check for a feature that is only known after the outcome"
        )
    return None


def single_feature_aucs(
    frame: pd.DataFrame, y: np.ndarray, features: list[str], categorical: list[str]
) -> dict[str, float]:
    """ROC AUC of each feature alone (direction-free: max(auc, 1 - auc)).

    Numeric features rank rows by their value (missing = below everything); categorical ones by
    a cross-fitted target encoding, so a high-cardinality id does not look predictive merely by
    memorising its own rows.
    """
    y = np.asarray(y, dtype=int)
    out: dict[str, float] = {}
    if len(np.unique(y)) < 2:
        return out
    for f in features:
        if f not in frame.columns:
            continue
        col = frame[f]
        if f in categorical:
            x = col.astype("object").where(col.notna(), "(missing)").astype(str).to_frame()
            score = (
                TargetEncoder(
                    target_type="binary", cv=StratifiedKFold(5, shuffle=True, random_state=0)
                )
                .fit_transform(x, y)
                .ravel()
            )
        else:
            v = pd.to_numeric(col, errors="coerce").astype(float)
            if v.notna().sum() == 0:
                continue
            score = v.fillna(v.min() - 1).to_numpy()
        auc = float(roc_auc_score(y, score))
        out[f] = max(auc, 1 - auc)
    return out


def leak_warnings_from(spec: ModelSpec, aucs: dict[str, float]) -> list[str]:
    """The leak warnings for already computed single-feature AUCs."""
    warnings = []
    for f, auc in sorted(aucs.items(), key=lambda kv: -kv[1]):
        if auc > spec.leak_auc:
            warnings.append(
                f"{spec.name}: feature {f!r} alone predicts {spec.label} with ROC AUC {auc:.3f} "
                f"(> {spec.leak_auc}) - a likely leak (a field filled in after the outcome?); "
                "exclude it unless it is truly known before the outcome"
            )
    return warnings


def outcome_leak_warnings(spec: ModelSpec, frame: pd.DataFrame, already: list[str]) -> list[str]:
    """Leak warnings against the entity's *eventual* outcome (``spec.extra["outcome_label"]``).

    A field filled in after the outcome (a loss reason, a close value) is fixed per deal, while
    the horizon label of the same deal is 0 in its early snapshots and 1 in its last ones; so it
    can stay below ``leak_auc`` on the horizon label yet give the outcome away on every row.
    Features already named by :func:`leak_warnings_from` (``already``) are not repeated.
    """
    column = spec.extra.get("outcome_label")
    if not column or column not in frame.columns:
        return []
    rows = frame[frame[column].notna()]
    if rows.empty:
        return []
    y = rows[column].astype(int).to_numpy()
    aucs = single_feature_aucs(rows, y, list(spec.features), list(spec.categorical))
    warnings = []
    for f, auc in sorted(aucs.items(), key=lambda kv: -kv[1]):
        if auc > spec.leak_auc and not any(repr(f) in w for w in already):
            warnings.append(
                f"{spec.name}: feature {f!r} alone predicts the eventual outcome ({column}) with "
                f"ROC AUC {auc:.3f} (> {spec.leak_auc}) - a likely leak (a field filled in after "
                "the outcome?); exclude it unless it is truly known before the outcome"
            )
    return warnings
