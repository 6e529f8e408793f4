"""Activity plan: the funnel arithmetic and smoothing towards the team."""

from __future__ import annotations

import pandas as pd
import pytest

from salespilot.features.pit import data_as_of
from salespilot.targets.activity import activity_plan, funnel_rates


def test_activity_plan_arithmetic():
    targets = pd.DataFrame({"unit": ["A", "B"], "base": [100_000.0, 0.0]})
    funnel = pd.DataFrame(
        {
            "rep_id": ["A", "B"],
            "lead_to_meeting": [0.5, 0.5],
            "meeting_to_demo": [0.5, 0.5],
            "demo_to_won": [0.25, 0.25],
            "avg_won_amount": [10_000.0, 10_000.0],
        }
    )
    plan = activity_plan(targets, funnel, weeks=13.0, months=3.0).set_index("unit")
    # A: 100k at 10k a deal = 10 wins = 40 demos = 80 meetings = 160 leads.
    assert plan.loc["A", "wins_needed"] == pytest.approx(10.0)
    assert plan.loc["A", "demos_needed"] == pytest.approx(40.0)
    assert plan.loc["A", "leads_needed"] == pytest.approx(160.0)
    assert plan.loc["A", "leads_per_week"] == pytest.approx(160.0 / 13.0)
    assert plan.loc["A", "demos_per_month"] == pytest.approx(40.0 / 3.0)
    assert plan.loc["A", "meetings_per_week"] == pytest.approx(80.0 / 13.0)
    assert plan.loc["B", "leads_per_week"] == 0.0


def test_funnel_rates_are_smoothed_towards_the_team(small_history):
    as_of = data_as_of(small_history)
    f = funnel_rates(small_history, as_of).set_index("rep_id")
    for step in ("lead_to_meeting", "meeting_to_demo", "demo_to_won"):
        assert f[step].between(0, 1).all()
    # The rep with few leads sits closer to the team rate than its raw rate.
    new = f["leads"].idxmin()
    raw = f.loc[new, "meeting"] / max(f.loc[new, "leads"], 1)
    team = f[f["team"] == f.loc[new, "team"]]
    team_rate = team["meeting"].sum() / team["leads"].sum()
    assert abs(f.loc[new, "lead_to_meeting"] - team_rate) <= abs(raw - team_rate) + 1e-9
    assert (f["avg_won_amount"] > 0).all()
