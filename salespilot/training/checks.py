"""Checks around training: enough examples, suspiciously good results, single-feature leaks."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedKFold
from sklearn.preprocessing import TargetEncoder

from salespilot.models.spec import ModelSpec
from salespilot.training.evaluate import roc_auc

log = logging.getLogger(__name__)


class NotEnoughDataError(ValueError):
    """Too few examples of a class to train or judge a model; the message gives the counts."""


def class_counts(y: np.ndarray) -> tuple[int, int]:
    y = np.asarray(y, dtype=int)
    return int(y.sum()), int(len(y) - y.sum())


def check_some_label_known(spec: ModelSpec, frame: pd.DataFrame) -> None:
    """Raise :class:`NotEnoughDataError` when ``frame`` has rows but none with a known label:
    every row's label horizon reaches past the history's end. Says what would help."""
    if frame.empty or spec.label not in frame.columns or frame[spec.label].notna().any():
        return
    t = pd.to_datetime(frame[spec.time_column])
    raise NotEnoughDataError(
        f"no row has a known label: the {spec.horizon_days}-day horizon of each of the "
        f"{len(frame):,} rows (from {t.min().date()} to {t.max().date()}) reaches past the "
        "history's end; give a shorter horizon (--horizon-days N), a longer history, or the "
        "export's end date (observed_until in the mapping) if it is later than the last event"
    )


def check_min_data(spec: ModelSpec, *, account: Any = None, **periods: np.ndarray) -> None:
    """Raise :class:`NotEnoughDataError` when a period has too few examples of either class.

    The training period needs ``spec.min_examples_per_class`` of each, validation and test
    ``spec.min_eval_examples_per_class`` (they only judge). ``account`` (a
    :class:`~salespilot.training.accounting.RowAccount`) puts the run's row accounting in the
    message: how many rows each period had and what was left out, and why.
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
            + ". "
            + ("" if account is None else f"{account.describe()}. ")
            + "Supply a longer history or one with more closed outcomes."
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
    present = [f for f in features if f in frame.columns]
    numeric = _numeric_aucs(frame, y, [f for f in present if f not in categorical])
    for f in present:
        if f not in categorical:
            if f in numeric:
                out[f] = numeric[f]
            continue
        col = frame[f]
        x = col.astype("object").where(col.notna(), "(missing)").astype(str).to_frame()
        score = (
            TargetEncoder(target_type="binary", cv=StratifiedKFold(5, shuffle=True, random_state=0))
            .fit_transform(x, y)
            .ravel()
        )
        auc = roc_auc(y, score)
        out[f] = max(auc, 1 - auc)
    return out


def _numeric_aucs(frame: pd.DataFrame, y: np.ndarray, features: list[str]) -> dict[str, float]:
    """Direction-free ROC AUC of each numeric column (missing = below everything), all columns
    ranked in one call: the Mann-Whitney statistic from average ranks, ties counting one half
    (what ``roc_auc_score`` integrates)."""
    from scipy.stats import rankdata

    columns, values = [], []
    for f in features:
        col = frame[f]
        if not pd.api.types.is_numeric_dtype(col.dtype):
            col = pd.to_numeric(col, errors="coerce")
        v = col.to_numpy(dtype=float, na_value=np.nan)
        if not np.isnan(v).all():
            columns.append(f)
            values.append(v)
    if not columns:
        return {}
    x = np.array(values).T  # column-major: each column sorts in contiguous memory
    missing = np.isnan(x)
    x[missing] = np.broadcast_to(np.nanmin(x, axis=0) - 1, x.shape)[missing]
    ranks = rankdata(x, axis=0)
    pos = y == 1
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    aucs = (ranks[pos].sum(axis=0) - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
    return {f: float(max(a, 1 - a)) for f, a in zip(columns, aucs, strict=True)}


def leak_warnings_from(spec: ModelSpec, aucs: dict[str, float]) -> list[str]:
    """The leak warnings for already computed single-feature AUCs."""
    warnings = []
    for f, auc in sorted(aucs.items(), key=lambda kv: -kv[1]):
        if auc > spec.leak_auc:
            warnings.append(
                f"{spec.name}: feature {f!r} alone predicts {spec.label} with ROC AUC {auc:.3f} "
                f"(> {spec.leak_auc}) - a likely leak (a field filled in after the outcome?); "
                f"exclude it (train --exclude {f}) unless it is truly known before the outcome"
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
                f"the outcome?); exclude it (train --exclude {f}) unless it is truly known "
                "before the outcome"
            )
    return warnings


#: a feature that alone ranks the outcome at least this well is named for review
REVIEW_AUC = 0.80
#: a feature carrying more than this share of the model's total gain is named for review
REVIEW_GAIN_SHARE = 0.5


def missingness_aucs(frame: pd.DataFrame, y: np.ndarray, features: list[str]) -> dict[str, float]:
    """ROC AUC of each feature's *missingness* alone (direction-free), for features that are
    sometimes missing and sometimes not: a field filled in only for won deals shows here."""
    y = np.asarray(y, dtype=int)
    out: dict[str, float] = {}
    if len(np.unique(y)) < 2:
        return out
    for f in features:
        if f not in frame.columns:
            continue
        missing = frame[f].isna().to_numpy()
        if missing.all() or not missing.any():
            continue
        auc = roc_auc(y, missing.astype(float))
        out[f] = max(auc, 1 - auc)
    return out


#: at most this share of the rows where a field is missing belong to deals that ever closed ...
UNCLOSED_MISSING_MAX_CLOSED = 0.02
#: ... while at least this share of the rows where it is filled in do
UNCLOSED_PRESENT_MIN_CLOSED = 0.25
UNCLOSED_MIN_ROWS = 20


def missing_only_unclosed(
    spec: ModelSpec, frame: pd.DataFrame, features: list[str]
) -> dict[str, str]:
    """Features missing (almost) only on deals that never closed: feature -> why, in words.

    An export that fills a field in when a deal closes (an account attached at the close), or
    a mapping that creates a placeholder for the deals without it (a placeholder account per
    open deal), tells the model "this one never closes" - a hint from the future that neither
    the horizon label nor the eventual outcome (NaN for those deals) shows as a leak.
    """
    column = spec.extra.get("outcome_label")
    if not column or column not in frame.columns:
        return {}
    closed = frame[column].notna().to_numpy()
    out = {}
    for f in features:
        if f not in frame.columns:
            continue
        missing = frame[f].isna().to_numpy()
        n_missing, n_present = int(missing.sum()), int((~missing).sum())
        if n_missing < UNCLOSED_MIN_ROWS or n_present < UNCLOSED_MIN_ROWS:
            continue
        closed_missing = float(closed[missing].mean())
        closed_present = float(closed[~missing].mean())
        if (
            closed_missing <= UNCLOSED_MISSING_MAX_CLOSED
            and closed_present >= UNCLOSED_PRESENT_MIN_CLOSED
        ):
            out[f] = (
                f"it is missing only on deals that never closed ({n_missing:,} training rows, "
                f"{closed_missing:.0%} of them closed against {closed_present:.0%} of the "
                "others): a field filled in when a deal closes, or a placeholder the mapping "
                "made for deals without it (a placeholder account), gives the outcome away"
            )
    return out


def gain_shares(booster: Any) -> dict[str, float]:
    """Each feature's share of the (LightGBM) booster's total split gain."""
    gain = np.asarray(booster.feature_importance(importance_type="gain"), dtype=float)
    total = float(gain.sum())
    if total <= 0:
        return {}
    return {f: float(g / total) for f, g in zip(booster.feature_name(), gain, strict=True)}


def review_warnings(
    spec: ModelSpec,
    single: dict[str, float],
    missing: dict[str, float],
    gains: dict[str, float],
    already: list[str],
    unclosed: dict[str, str] | None = None,
) -> tuple[list[str], list[str]]:
    """Features to review as possible after-the-fact fields: ``(warnings, feature names)``.

    Named: a feature that alone ranks the outcome with ROC AUC >= :data:`REVIEW_AUC` (either
    direction), one whose missingness alone separates the classes that well, one carrying more
    than :data:`REVIEW_GAIN_SHARE` of the model's gain, and the ``unclosed`` ones (see
    :func:`missing_only_unclosed`, feature -> why). Features already named at error level
    (``already``: warnings of :func:`leak_warnings_from`) are not repeated.
    """
    found: dict[str, list[str]] = {}
    for f, auc in single.items():
        if auc >= REVIEW_AUC:
            found.setdefault(f, []).append(f"alone ranks {spec.label} with ROC AUC {auc:.3f}")
    for f, auc in missing.items():
        if auc >= REVIEW_AUC:
            found.setdefault(f, []).append(
                f"whether it is missing alone separates the classes (ROC AUC {auc:.3f})"
            )
    for f, share in gains.items():
        if share > REVIEW_GAIN_SHARE:
            found.setdefault(f, []).append(f"carries {share:.0%} of the model's total gain")
    for f, why in (unclosed or {}).items():
        found.setdefault(f, []).append(why)
    warnings, names = [], []
    for f in sorted(found):
        if any(repr(f) in w for w in already):
            continue
        names.append(f)
        warnings.append(
            f"{spec.name}: review feature {f!r}: " + "; ".join(found[f]) + " - is it known "
            f"before the outcome? If it is filled in afterwards, exclude it (train --exclude {f}; "
            "mapping: known: after_outcome)"
        )
    return warnings, names
