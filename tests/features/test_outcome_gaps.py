"""Histories that lack a model's outcomes: a churn-only export (no deals), same-day decisions.

``validate`` and ``train`` must agree: a model ``validate`` calls trainable has labelled rows of
both classes, the others are named with the reason, and nothing crashes on an empty table.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from salespilot.features import training_sets
from salespilot.features.history import History
from salespilot.features.loader import load_history, summarize_history
from tests.features.history_files import NOW, VALID, write_history


def _header(table: str) -> str:
    return VALID[table].splitlines()[0] + "\n"


def _churn_only(history: History) -> History:
    """``history`` as a churn-only export: no deals, stage changes or activities."""
    return dataclasses.replace(
        history,
        opportunities=history.opportunities.iloc[:0],
        stage_changes=history.stage_changes.iloc[:0],
        activities=history.activities.iloc[:0],
    )


def test_model_feature_tables_match_the_specs():
    from salespilot.models import SPECS

    assert {n: s.table for n, s in SPECS.items()} == training_sets.MODEL_FEATURE_TABLES


def test_empty_opportunities_table_is_named_not_a_crash(tmp_path):
    folder = write_history(
        tmp_path / "h",
        opportunities=_header("opportunities"),
        stage_changes=_header("stage_changes"),
        activities=_header("activities"),
    )
    history = load_history(folder, now=NOW)
    # no deal to start from: the grid starts from the subscriptions
    grid = training_sets.as_of_grid(history)
    assert len(grid) > 0
    summary = summarize_history(history)
    assert "win_probability" not in summary["models_available"]
    assert summary["models_skipped"]["win_probability"] == (
        "win_probability cannot be trained: the opportunities table has no rows"
    )
    assert "contact_time" in summary["models_skipped"]
    assert summary["models_available"] == ["churn_risk"]


def test_train_skips_a_model_without_outcomes_with_validates_message(tmp_path):
    from salespilot.models import SPECS
    from salespilot.training.train import MissingTablesError, check_tables

    folder = write_history(
        tmp_path / "h",
        opportunities=_header("opportunities"),
        stage_changes=_header("stage_changes"),
        activities=_header("activities"),
    )
    history = load_history(folder, now=NOW)
    with pytest.raises(MissingTablesError) as e:
        check_tables(SPECS["win_probability"], history)
    assert str(e.value) == summarize_history(history)["models_skipped"]["win_probability"]


def test_same_day_decisions_are_named(tmp_path):
    opps = _header("opportunities") + (
        "o1,a1,r1,platform,webinar,100,2025-03-04T09:00:00Z,,2025-03-04T17:00:00Z,won\n"
        "o2,a2,r3,platform,webinar,100,2025-03-05T09:00:00Z,,2025-03-05T10:00:00Z,lost\n"
    )
    history = load_history(
        write_history(tmp_path / "h", opportunities=opps, stage_changes=_header("stage_changes")),
        now=NOW,
    )
    gap = training_sets.outcome_gap(history, "deals")
    assert gap is not None and "weekly snapshot" in gap
    # one deal that stays open over a Monday midnight is enough
    opps_ok = opps.replace("2025-03-05T10:00:00Z", "2025-03-12T10:00:00Z")
    history_ok = load_history(
        write_history(
            tmp_path / "h2", opportunities=opps_ok, stage_changes=_header("stage_changes")
        ),
        now=NOW,
    )
    assert training_sets.outcome_gap(history_ok, "deals") is None


def test_churn_only_export_has_churned_and_retained_rows(demo_history: History):
    history = _churn_only(demo_history)
    assert training_sets.outcome_gap(history, "accounts") is None
    start = training_sets.history_start(history)
    first_end = demo_history.subscriptions["ended_at"].min()
    assert start == max(
        demo_history.subscriptions["started_at"].min(),
        first_end - pd.Timedelta(days=training_sets.CHURN_ONLY_LEAD_DAYS),
    )
    grid = training_sets.as_of_grid(history)
    frame = training_sets.build_training_set(history, "accounts", grid[::4], 90)
    labels = frame["label_churned"].dropna()
    assert set(np.unique(labels)) == {0.0, 1.0}
