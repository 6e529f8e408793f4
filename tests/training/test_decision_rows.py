"""Decision-time rows: a flat export's entity scored once at its decision time, split by it."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from salespilot.features import training_sets
from salespilot.training.split import SplitError, decision_split


def test_decision_split_cuts_by_decision_order_and_embargoes_only_unresolved_rows():
    t = pd.Series(pd.date_range("2025-01-01", periods=100, freq="D"))
    resolved = t + pd.Timedelta(days=1)
    resolved[55] = t[99]  # row 55 (training by time) was still unresolved at the test period
    s = decision_split(t, resolved)
    assert s.test.sum() == 20 and s.test[80:].all()  # the latest 20 % of decisions
    assert s.valid[60:79].all() and not s.valid[79]  # resolved on day 80: the test period
    assert s.train[:59].sum() == 58 and not s.train[55]  # only the unresolved row left out
    assert s.embargo_days == pytest.approx(1.0)
    with pytest.raises(SplitError, match="too few distinct decision times"):
        decision_split(pd.Series([t[0]] * 10), pd.Series([t[0]] * 10))


def test_win_model_on_decision_rows_has_one_row_per_deal(demo_history):
    from salespilot.models import SPECS
    from salespilot.training.core import fit_and_evaluate
    from salespilot.training.train import build_dataset, check_tables

    spec = dataclasses.replace(
        SPECS["win_probability"], rows="decision", horizon_days=120, num_boost_round=60
    )
    check_tables(spec, demo_history)
    frame = build_dataset(spec, demo_history)
    assert len(frame) == len(demo_history.opportunities)
    assert frame["opportunity_id"].is_unique
    created = demo_history.opportunities.set_index("opportunity_id")["created_at"]
    assert (frame["as_of"].to_numpy() == created.loc[frame["opportunity_id"]].to_numpy()).all()
    assert (frame["deal_age_days"] == 0).all()
    assert (frame["resolved_at"] >= frame["as_of"]).all()
    ev = fit_and_evaluate(spec, frame)
    labelled = int(frame[spec.label].notna().sum())
    assert ev.split.test.sum() == pytest.approx(0.2 * labelled, abs=2)
    assert 0.5 < ev.metrics["roc_auc"] <= 1.0


def test_same_day_decisions_train_on_decision_rows(demo_history):
    """Every deal decided within hours of its creation: never open at a weekly snapshot, so
    the grid has no row, while decision-time rows keep one per deal."""
    opps = demo_history.opportunities.copy()
    closed = opps["status"] != "open"
    opps.loc[closed, "closed_at"] = opps.loc[closed, "created_at"] + pd.Timedelta(hours=1)
    history = dataclasses.replace(demo_history, opportunities=opps)
    assert "weekly snapshot" in (training_sets.outcome_gap(history, "deals") or "")
    assert training_sets.outcome_gap(history, "deals", decision_rows=True) is None
    frame = training_sets.build_decision_set(history, "deals", 30)
    labels = frame["label_won"].dropna()
    assert len(labels) > 0.8 * len(frame) and set(np.unique(labels)) == {0.0, 1.0}
