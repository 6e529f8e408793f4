"""Metrics on the test period, named as scikit-learn spells them, plus ECE and top-decile lift.

``binary_metrics`` scores any probability vector (model, baseline or oracle) on the same rows,
so the three are always comparable. ``slot_metrics`` judges a contact-time model by the slot
it would recommend, using the true connect probabilities of the demo generator.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

METRIC_NAMES = (
    "roc_auc",
    "average_precision",
    "log_loss",
    "brier_score",
    "ece",
    "top_decile_lift",
    "top_decile_capture",
)
HIGHER_IS_BETTER = {"roc_auc", "average_precision", "top_decile_lift", "top_decile_capture"}
_EPS = 1e-6


def expected_calibration_error(y: np.ndarray, p: np.ndarray, n_bins: int = 10) -> float:
    """Mean |observed rate - mean predicted| over ten equal-width bins, weighted by bin size."""
    y = np.asarray(y, dtype=float)
    p = np.asarray(p, dtype=float)
    bins = np.minimum((p * n_bins).astype(int), n_bins - 1)
    total = 0.0
    for b in np.unique(bins):
        m = bins == b
        total += m.sum() * abs(y[m].mean() - p[m].mean())
    return float(total / len(y))


class RankedScores:
    """Scores sorted once, ties grouped, so the ROC AUC of any reweighting of the rows costs a
    pass over them instead of a sort: a bootstrap resample is a reweighting (each row counted
    as often as it was drawn), so 200 resamples sort once, not 200 times.

    The AUC is the Mann-Whitney statistic (a tie between a positive and a negative counts one
    half), which is the area scikit-learn's ``roc_auc_score`` integrates: the same number up
    to the last bits of a float.
    """

    def __init__(self, y: np.ndarray, score: np.ndarray) -> None:
        score = np.asarray(score, dtype=float)
        self._order = np.argsort(score, kind="stable")
        ranked = score[self._order]
        self._positive = np.asarray(y, dtype=int)[self._order] == 1
        self._group = np.cumsum(np.r_[True, ranked[1:] != ranked[:-1]]) - 1
        self._groups = int(self._group[-1]) + 1 if len(ranked) else 0

    def auc(self, weights: np.ndarray | None = None) -> float:
        """ROC AUC with row ``weights`` (counts; None: every row once); NaN with one class."""
        w = np.ones(len(self._order)) if weights is None else np.asarray(weights, float)
        w = w[self._order]
        pos = np.bincount(
            self._group, weights=np.where(self._positive, w, 0.0), minlength=self._groups
        )
        neg = np.bincount(
            self._group, weights=np.where(self._positive, 0.0, w), minlength=self._groups
        )
        n_pos, n_neg = pos.sum(), neg.sum()
        if n_pos == 0 or n_neg == 0:
            return float("nan")
        below = np.cumsum(neg) - neg
        return float((pos * (below + 0.5 * neg)).sum() / (n_pos * n_neg))


def roc_auc(y: np.ndarray, score: np.ndarray) -> float:
    """ROC AUC of ``score`` against labels ``y`` (NaN with one class); see :class:`RankedScores`."""
    return RankedScores(y, score).auc()


def top_decile(y: np.ndarray, score: np.ndarray) -> tuple[float, float]:
    """(lift, capture) of the 10 % highest-scored rows: their positive rate over the overall
    rate, and the share of all positives they hold. Ties are broken by row order (stable)."""
    y = np.asarray(y, dtype=float)
    n_top = max(1, math.ceil(0.1 * len(y)))
    order = np.argsort(-np.asarray(score, dtype=float), kind="stable")[:n_top]
    base = y.mean()
    if base == 0:
        return float("nan"), float("nan")
    return float(y[order].mean() / base), float(y[order].sum() / y.sum())


def binary_metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """All metrics of :data:`METRIC_NAMES` for probabilities ``p`` against labels ``y``."""
    from sklearn.metrics import (
        average_precision_score,
        brier_score_loss,
        log_loss,
        roc_auc_score,
    )

    y = np.asarray(y, dtype=int)
    p = np.clip(np.asarray(p, dtype=float), _EPS, 1 - _EPS)
    both = len(np.unique(y)) == 2
    lift, capture = top_decile(y, p)
    return {
        "roc_auc": float(roc_auc_score(y, p)) if both else float("nan"),
        "average_precision": float(average_precision_score(y, p)) if both else float("nan"),
        "log_loss": float(log_loss(y, p, labels=[0, 1])),
        "brier_score": float(brier_score_loss(y, p)),
        "ece": expected_calibration_error(y, p),
        "top_decile_lift": lift,
        "top_decile_capture": capture,
    }


def slot_metrics(
    recommended: pd.DataFrame,
    usual: pd.DataFrame,
    profile: pd.DataFrame,
    *,
    contact_column: str = "contact_id",
    truth_probability: str = "p_connect_call",
    slots: pd.DataFrame | None = None,
    usual_weekdays: tuple[int, ...] = (0, 1, 2, 3, 4),
) -> dict[str, float]:
    """How good the recommended slot is, by the true connect probability of each contact.

    ``recommended``: contact, weekday, hour the model picks; ``usual``: contact, hour the rep
    usually calls (its true probability is the mean over ``usual_weekdays``: reps call on working days);
    ``profile``: the truth table (contact, weekday, hour, probabilities); ``slots``: the
    candidate (weekday, hour) pairs the model chose among (default: all of the profile's).

    ``slot_regret`` is the mean of (best true p - recommended true p); ``slot_share_of_best`` the
    mean recommended p over the mean best p; ``slot_lift_vs_usual_hour`` the mean recommended p
    over the mean usual-hour p.
    """
    c = contact_column
    prof = profile[[c, "weekday", "hour", truth_probability]].rename(
        columns={truth_probability: "p"}
    )
    if slots is not None:
        prof = prof.merge(slots[["weekday", "hour"]].drop_duplicates(), on=["weekday", "hour"])
    best = prof.groupby(c)["p"].max().rename("p_best")
    rec = recommended[[c, "weekday", "hour"]].merge(prof, on=[c, "weekday", "hour"], how="inner")
    rec = rec.set_index(c)["p"].rename("p_rec")
    workdays = prof[prof["weekday"].isin(usual_weekdays)]
    hour_mean = workdays.groupby([c, "hour"])["p"].mean().rename("p_usual").reset_index()
    usu = usual[[c, "hour"]].merge(hour_mean, on=[c, "hour"], how="inner").set_index(c)["p_usual"]
    joined = pd.concat([best, rec, usu], axis=1, join="inner")
    if joined.empty:
        return {
            "slot_regret": float("nan"),
            "slot_share_of_best": float("nan"),
            "slot_lift_vs_usual_hour": float("nan"),
            "slot_contacts": 0.0,
        }
    return {
        "slot_regret": float((joined.p_best - joined.p_rec).mean()),
        "slot_share_of_best": float(joined.p_rec.mean() / joined.p_best.mean()),
        "slot_lift_vs_usual_hour": float(joined.p_rec.mean() / joined.p_usual.mean()),
        "slot_contacts": float(len(joined)),
    }
