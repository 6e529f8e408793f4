"""The readiness verdict of a trained version: ``ready``, ``usable`` or ``not_ready``, with reasons.

Judged on the test period only, against the logistic regression scored on the same rows:

* ``not_ready`` when the test period has too few examples of a class to judge
  (:data:`MIN_TEST_PER_CLASS`), when the test ROC AUC's seeded bootstrap 90 % interval includes
  0.5, when the model does not beat the logistic regression's ROC AUC, or when a leak check fired
  at error level;
* ``usable`` when the model ranks better than chance and than the logistic regression, but the
  interval's lower bound stays below :data:`READY_AUC_LOW` (a narrow gain);
* ``ready`` otherwise.

A ``not_ready`` version never becomes champion through the automatic promotion rule.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.metrics import roc_auc_score

READY = "ready"
USABLE = "usable"
NOT_READY = "not_ready"

MIN_TEST_PER_CLASS = 20
BOOTSTRAP_RESAMPLES = 200
BOOTSTRAP_SEED = 0
INTERVAL = 0.90
#: the lower end of the test ROC AUC's interval a ``ready`` model reaches
READY_AUC_LOW = 0.60


@dataclass
class Readiness:
    verdict: str
    reasons: list[str] = field(default_factory=list)
    roc_auc_interval: tuple[float, float] | None = None
    help: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "reasons": list(self.reasons),
            "roc_auc_interval": None
            if self.roc_auc_interval is None
            else [float(v) for v in self.roc_auc_interval],
            "help": self.help,
        }


def bootstrap_auc_interval(
    y: np.ndarray,
    p: np.ndarray,
    *,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
    level: float = INTERVAL,
) -> tuple[float, float]:
    """Percentile bootstrap interval of ROC AUC (rows resampled with replacement, seeded)."""
    y = np.asarray(y, dtype=int)
    p = np.asarray(p, dtype=float)
    rng = np.random.default_rng(seed)
    aucs = []
    for _ in range(resamples):
        idx = rng.integers(0, len(y), len(y))
        if y[idx].min() == y[idx].max():
            continue
        aucs.append(roc_auc_score(y[idx], p[idx]))
    if not aucs:
        return float("nan"), float("nan")
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(aucs, [tail, 100 - tail])
    return float(low), float(high)


def judge(
    *,
    y_test: np.ndarray,
    p_test: np.ndarray,
    baseline_auc: float | None,
    error_leaks: list[str],
    positive_name: str = "positive",
    negative_name: str = "negative",
) -> Readiness:
    """The verdict for one model's test scores (``baseline_auc``: the logistic regression's)."""
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
        return Readiness(NOT_READY, reasons, None, "; ".join(helps))
    auc = float(roc_auc_score(y, p_test))
    low, high = bootstrap_auc_interval(y, p_test)
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
        helps.append("exclude the named fields (or mark them known: after_outcome in the mapping)")
    if reasons:
        return Readiness(NOT_READY, reasons, interval, "; ".join(helps))
    gain = "" if baseline_auc is None else f", logistic regression {baseline_auc:.3f}"
    if low < READY_AUC_LOW:
        reasons.append(
            f"test ROC AUC {auc:.3f} (90 % interval {low:.3f}-{high:.3f}{gain}): better than "
            f"chance, but the interval's lower end is below {READY_AUC_LOW}"
        )
        return Readiness(
            USABLE, reasons, interval, "more history or more informative fields would firm it up"
        )
    reasons.append(f"test ROC AUC {auc:.3f} (90 % interval {low:.3f}-{high:.3f}{gain})")
    return Readiness(READY, reasons, interval, None)
