"""The oracle: the demo generator's true probabilities, scored like a model on the same rows.

Only histories written by :func:`salespilot.features.demo.generate_history` have a ``truth/``
folder; for them the gap (oracle ROC AUC - model ROC AUC) says how much signal is left.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from salespilot.models.spec import ModelSpec
from salespilot.training.core import OracleFn, SlotFn

if TYPE_CHECKING:
    from salespilot.features.history import History

log = logging.getLogger(__name__)


def oracle_for(spec: ModelSpec, truth: Path, history: History | None = None) -> OracleFn | None:
    """A function giving the true probability of each test row of ``spec`` (None if unknown)."""
    try:
        from salespilot.features.demo import truth as t
    except ImportError:
        return None

    def win(rows: pd.DataFrame) -> np.ndarray:
        # the label is "won within the horizon": the oracle is that probability, not "ever won"
        return np.asarray(
            t.oracle_win(truth, rows[["opportunity_id", "as_of"]], horizon_days=spec.horizon_days),
            dtype=float,
        )

    def churn(rows: pd.DataFrame) -> np.ndarray:
        # what the generator knew at as_of, averaged over the account's possible futures
        return np.asarray(
            t.oracle_churn(truth, rows[["account_id", "as_of"]], spec.horizon_days),
            dtype=float,
        )

    def attempt(rows: pd.DataFrame) -> np.ndarray:
        return np.asarray(t.oracle_attempt(truth, rows["activity_id"]), dtype=float)

    fn = {"label_won": win, "label_churned": churn, "label_success": attempt}.get(spec.label)

    def safe(rows: pd.DataFrame) -> np.ndarray | None:
        try:
            return fn(rows)
        except Exception as exc:  # the oracle is a bonus; never fail training for it
            log.warning("%s: no oracle (%s)", spec.name, exc)
            return None

    return safe if fn else None


def slot_evaluator(spec: ModelSpec, truth: Path, history: History) -> SlotFn | None:
    """Judge a contact-time model by the slot it recommends (see ``evaluate.slot_metrics``)."""
    from salespilot.training.slots import make_slot_evaluator

    return make_slot_evaluator(spec, truth, history)
