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
        return np.asarray(t.oracle_win(truth, rows[["opportunity_id", "as_of"]]), dtype=float)

    def churn(rows: pd.DataFrame) -> np.ndarray:
        return churn_hazard_oracle(t.read_truth(truth, "churn"), rows, spec.horizon_days)

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


def churn_hazard_oracle(
    periods: pd.DataFrame, rows: pd.DataFrame, horizon_days: float
) -> np.ndarray:
    """True churn probability within the horizon from the weekly hazard in force at ``as_of``.

    ``1 - (1 - p_now) ** (horizon / period length)``: what the generator knew at ``as_of``,
    carried forward. Summing the hazards of the periods that follow instead (the truth module's
    ``oracle_churn``) is biased: an account's periods stop when it churns, so accounts that
    churn soon collect fewer periods and look *safer* (ROC AUC ~0.5 on the demo).
    """
    q = pd.DataFrame(
        {
            "account_id": rows["account_id"].astype(str).to_numpy(),
            "as_of": pd.to_datetime(rows["as_of"]).to_numpy(),
            "_pos": np.arange(len(rows)),
        }
    ).sort_values("as_of", kind="stable")
    p = periods[["account_id", "period_start", "period_end", "p_churn"]].copy()
    p["account_id"] = p["account_id"].astype(str)
    p = p.sort_values("period_start", kind="stable")
    m = pd.merge_asof(
        q, p, left_on="as_of", right_on="period_start", by="account_id", direction="backward"
    ).sort_values("_pos")
    weeks = (m["period_end"] - m["period_start"]).dt.total_seconds() / 86400
    exponent = horizon_days / weeks.where(weeks > 0, 7.0)
    hazard = m["p_churn"].fillna(0.0).clip(0, 1 - 1e-12)
    return (1 - (1 - hazard) ** exponent.fillna(horizon_days / 7.0)).to_numpy(dtype=float)
