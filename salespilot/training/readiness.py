"""The readiness verdict of a trained version: ``ready``, ``usable`` or ``not_ready``, with reasons.

Judged on the test period only, against the logistic regression scored on the same rows:

* ``not_ready`` when the test period has too few examples of a class to judge
  (:data:`MIN_TEST_PER_CLASS`), when the test ROC AUC's seeded bootstrap 90 % interval includes
  0.5 (a cluster bootstrap: an entity's rows - a deal's weekly snapshots - are drawn
  together), when the model does not beat the logistic regression's ROC AUC, when a leak
  check fired at error level, or (win model) when among the test deals that closed within the horizon it
  tells won from lost no better than the deal's age alone (:class:`WonVsLost`: the seeded
  bootstrap interval of the paired ROC AUC difference includes 0) - a model that learned *when*
  deals close, not *which* win;
* ``usable`` when the model ranks better than chance and than the logistic regression, but the
  interval's lower bound stays below :data:`READY_AUC_LOW` (a narrow gain);
* ``ready`` otherwise.

A ``not_ready`` version never becomes champion through the automatic promotion rule.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from salespilot.training.evaluate import RankedScores

READY = "ready"
USABLE = "usable"
NOT_READY = "not_ready"

MIN_TEST_PER_CLASS = 20
BOOTSTRAP_RESAMPLES = 200
BOOTSTRAP_SEED = 0
INTERVAL = 0.90
#: the lower end of the test ROC AUC's interval a ``ready`` model reaches
READY_AUC_LOW = 0.60


def _pair(values: tuple[float, float] | None) -> list[float] | None:
    return None if values is None else [float(v) for v in values]


@dataclass
class WonVsLost:
    """Won against lost among the test rows of deals that closed within the horizon: the
    model's ROC AUC there beside a one-feature baseline of the deal's age on the same rows.

    A model that only learned timing (young deals close soon, old ones rarely) ranks "won
    within the horizon" well and won against lost no better than the deal's age does.
    """

    won: int
    lost: int
    auc: float | None = None
    interval: tuple[float, float] | None = None
    age_baseline_auc: float | None = None
    #: the seeded bootstrap interval of (model ROC AUC - age baseline ROC AUC), paired rows
    gain_interval: tuple[float, float] | None = None

    @property
    def judged(self) -> bool:
        return self.won >= MIN_TEST_PER_CLASS and self.lost >= MIN_TEST_PER_CLASS

    @property
    def within_noise(self) -> bool:
        """True when the gain over the deal-age baseline is not distinguishable from 0."""
        return self.judged and self.gain_interval is not None and not self.gain_interval[0] > 0

    def to_json(self) -> dict[str, Any]:
        return {
            "won": self.won,
            "lost": self.lost,
            "auc": self.auc,
            "interval": _pair(self.interval),
            "age_baseline_auc": self.age_baseline_auc,
            "gain_interval": _pair(self.gain_interval),
        }


@dataclass
class Readiness:
    verdict: str
    reasons: list[str] = field(default_factory=list)
    roc_auc_interval: tuple[float, float] | None = None
    help: str | None = None
    won_vs_lost: WonVsLost | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "reasons": list(self.reasons),
            "roc_auc_interval": _pair(self.roc_auc_interval),
            "help": self.help,
            "won_vs_lost": None if self.won_vs_lost is None else self.won_vs_lost.to_json(),
        }


def _bootstrap_interval(
    y: np.ndarray,
    statistic: Any,
    *,
    groups: np.ndarray | None,
    resamples: int,
    seed: int,
    level: float,
) -> tuple[float, float]:
    """Percentile bootstrap interval of ``statistic(counts)`` over clusters resampled with
    replacement (seeded; ``counts[i]``: how often row ``i``'s cluster was drawn). A drawn
    cluster brings all its rows: ``groups`` holds each row's entity - the weekly rows of one
    deal share its outcome, so they are one draw, not many (None: each row its own cluster).
    Resamples holding a single class are skipped."""
    y = np.asarray(y, dtype=int)
    codes = np.arange(len(y)) if groups is None else pd.factorize(np.asarray(groups))[0]
    n_groups = int(codes.max()) + 1 if len(codes) else 0
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(resamples):
        drawn = rng.integers(0, n_groups, n_groups)
        counts = np.bincount(drawn, minlength=n_groups)[codes]
        drawn_y = y[counts > 0]
        if drawn_y.min() == drawn_y.max():
            continue
        values.append(statistic(counts))
    if not values:
        return float("nan"), float("nan")
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


def bootstrap_auc_interval(
    y: np.ndarray,
    p: np.ndarray,
    *,
    groups: np.ndarray | None = None,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
    level: float = INTERVAL,
) -> tuple[float, float]:
    """Percentile bootstrap interval of ROC AUC (clusters ``groups`` - the rows' entities -
    resampled with replacement, seeded; None: rows)."""
    y = np.asarray(y, dtype=int)
    ranked = RankedScores(y, p)  # sorted once: each resample reweights the rows
    return _bootstrap_interval(
        y, ranked.auc, groups=groups, resamples=resamples, seed=seed, level=level
    )


def bootstrap_auc_difference_interval(
    y: np.ndarray,
    p: np.ndarray,
    p_other: np.ndarray,
    *,
    groups: np.ndarray | None = None,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
    level: float = INTERVAL,
) -> tuple[float, float]:
    """Interval of ROC AUC(``p``) - ROC AUC(``p_other``), both scored on each same resample
    (the same resamples as :func:`bootstrap_auc_interval` with the same seed and groups)."""
    y = np.asarray(y, dtype=int)
    ranked, other = RankedScores(y, p), RankedScores(y, p_other)
    return _bootstrap_interval(
        y,
        lambda counts: ranked.auc(counts) - other.auc(counts),
        groups=groups,
        resamples=resamples,
        seed=seed,
        level=level,
    )


def won_vs_lost(
    y_won: np.ndarray,
    p: np.ndarray,
    p_age: np.ndarray | None,
    *,
    groups: np.ndarray | None = None,
) -> WonVsLost:
    """:class:`WonVsLost` of test rows whose deal closed (``y_won``: 1 won, 0 lost), the
    model's scores ``p`` and the deal-age baseline's ``p_age`` on the same rows (None: no
    baseline could be fitted, nothing to compare with); ``groups``: each row's deal, the
    bootstrap's clusters."""
    y = np.asarray(y_won, dtype=int)
    won, lost = int(y.sum()), int(len(y) - y.sum())
    if not won or not lost:
        return WonVsLost(won, lost)
    out = WonVsLost(won, lost, auc=float(roc_auc_score(y, p)))
    if out.judged:
        out.interval = bootstrap_auc_interval(y, p, groups=groups)
    if p_age is not None:
        out.age_baseline_auc = float(roc_auc_score(y, p_age))
        if out.judged:
            out.gain_interval = bootstrap_auc_difference_interval(y, p, p_age, groups=groups)
    return out


def _won_vs_lost_reason(w: WonVsLost, horizon_days: int | None) -> str:
    within = f" within {horizon_days} days" if horizon_days else ""
    if not w.judged:
        return (
            f"won against lost not judged: the test deals that closed{within} give {w.won} won "
            f"and {w.lost} lost rows (needs at least {MIN_TEST_PER_CLASS} of each)"
        )
    low, high = w.interval or (float("nan"), float("nan"))
    text = (
        f"won against lost among the test deals that closed{within} ({w.won} won, {w.lost} lost "
        f"rows): ROC AUC {w.auc:.3f} (90 % interval {low:.3f}-{high:.3f})"
    )
    if w.age_baseline_auc is None or w.gain_interval is None:
        return text + ", no deal-age baseline (the training rows hold no won and lost closes)"
    g_low, g_high = w.gain_interval
    gain = w.auc - w.age_baseline_auc
    text += (
        f", the deal's age alone {w.age_baseline_auc:.3f} (gain {gain:+.3f}, 90 % interval "
        f"{g_low:+.3f} to {g_high:+.3f})"
    )
    if w.within_noise:
        text += (
            ": the model tells won from lost no better than the deal's age - it learned when "
            "deals close, not which ones win"
        )
    return text


def judge(
    *,
    y_test: np.ndarray,
    p_test: np.ndarray,
    baseline_auc: float | None,
    error_leaks: list[str],
    positive_name: str = "positive",
    negative_name: str = "negative",
    won_lost: WonVsLost | None = None,
    horizon_days: int | None = None,
    groups: np.ndarray | None = None,
) -> Readiness:
    """The verdict for one model's test scores (``baseline_auc``: the logistic regression's;
    ``won_lost``: the win model's won-against-lost check, see :func:`won_vs_lost`;
    ``groups``: each test row's entity, the bootstrap's clusters)."""
    y = np.asarray(y_test, dtype=int)
    pos, neg = int(y.sum()), int(len(y) - y.sum())
    reasons: list[str] = []
    helps: list[str] = []
    if pos < MIN_TEST_PER_CLASS or neg < MIN_TEST_PER_CLASS:
        reasons.append(
            f"the test period has {pos} {positive_name} and {neg} {negative_name}: too few to "
            f"judge (needs at least {MIN_TEST_PER_CLASS} of each)"
        )
        helps.append("a longer history or one with more recorded outcomes in its latest months")
        return Readiness(NOT_READY, reasons, None, "; ".join(helps), won_lost)
    auc = float(roc_auc_score(y, p_test))
    low, high = bootstrap_auc_interval(y, p_test, groups=groups)
    interval = (low, high)
    if low <= 0.5:
        reasons.append(
            f"test ROC AUC {auc:.3f} (90 % interval {low:.3f}-{high:.3f}, {pos + neg} test rows) "
            "is not distinguishable from chance (0.5)"
        )
        helps.append(
            "more test rows (a longer history) or fields that carry signal about the outcome"
        )
    if baseline_auc is not None and np.isfinite(baseline_auc) and auc <= baseline_auc:
        reasons.append(
            f"test ROC AUC {auc:.3f} does not beat the logistic regression on the same rows "
            f"({baseline_auc:.3f})"
        )
        helps.append("more training rows, or fields the linear baseline cannot use as well")
    if error_leaks:
        reasons.append("a leak check fired: " + "; ".join(error_leaks))
        helps.append(
            "exclude the named fields (train --exclude NAME, or mark them known: after_outcome "
            "in the mapping)"
        )
    if won_lost is not None and won_lost.within_noise:
        reasons.append(_won_vs_lost_reason(won_lost, horizon_days))
        helps.append(
            "the outcomes of more closed deals, won and lost, and fields that tell them apart "
            "before the close (activities with replies and meetings, stage changes, contacts)"
        )
    if reasons:
        return Readiness(NOT_READY, reasons, interval, "; ".join(helps), won_lost)
    gain = "" if baseline_auc is None else f", logistic regression {baseline_auc:.3f}"
    if low < READY_AUC_LOW:
        reasons.append(
            f"test ROC AUC {auc:.3f} (90 % interval {low:.3f}-{high:.3f}{gain}): better than "
            f"chance, but the interval's lower end is below {READY_AUC_LOW}"
        )
        verdict, help_ = USABLE, "more history or more informative fields would firm it up"
    else:
        reasons.append(f"test ROC AUC {auc:.3f} (90 % interval {low:.3f}-{high:.3f}{gain})")
        verdict, help_ = READY, None
    if won_lost is not None:
        reasons.append(_won_vs_lost_reason(won_lost, horizon_days))
    return Readiness(verdict, reasons, interval, help_, won_lost)
