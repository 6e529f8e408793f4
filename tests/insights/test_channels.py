"""Channel insights: Wilson interval, Kaplan-Meier retention, flags on known and demo data."""

from __future__ import annotations

import json

import numpy as np
import pytest

from insights.factories import build, rep
from salespilot.targets.channels import (
    channel_insights,
    channels_overview,
    kaplan_meier,
    wilson_interval,
)


def test_wilson_interval_matches_the_textbook_values():
    low, high = wilson_interval([10, 0, 5], [100, 20, 5])
    # 10/100: 0.0552-0.1744 (Wilson 1927, as in every table); 0/20 and 5/5 stay inside [0, 1].
    assert low[0] == pytest.approx(0.0552, abs=1e-4) and high[0] == pytest.approx(0.1744, abs=1e-4)
    assert low[1] == pytest.approx(0.0, abs=1e-12) and 0.0 < high[1] < 0.2
    assert high[2] == pytest.approx(1.0) and 0.5 < low[2] < 1.0
    assert np.isnan(wilson_interval([0], [0])[0][0])


def test_kaplan_meier_counts_censored_lives_until_they_leave_view():
    # 4 lives: ended at 2, censored at 3, ended at 5, censored at 10 -> S = 1, 3/4, 3/4*1/2.
    s = kaplan_meier(np.array([2, 3, 5, 10]), np.array([1, 0, 1, 0]), np.array([1, 2, 4, 6]))
    assert s.tolist() == [1.0, 0.75, 0.75, 0.375]


@pytest.fixture(scope="module")
def known():
    """Referral leads pass qualification twice as often, and referral customers stay."""
    return build(
        [
            rep(
                f"R{i}",
                leads_per_month=20,
                passes={"qualification": 0.4, "demo": 0.5, "proposal": 0.8},
                source_win={"referral": 2.4},
            )
            for i in range(4)
        ],
        subscriptions=True,
    )


def test_the_strong_source_is_flagged_with_an_interval_above_overall(known):
    report = channel_insights(known)
    rows = report.rows.set_index("lead_source")
    ref, cold = rows.loc["referral"], rows.loc["cold"]
    assert ref["lead_share"] == pytest.approx(0.2, abs=0.02)
    assert ref["win_rate_low"] > report.overall["win_rate"] > cold["win_rate_high"]
    assert ref["flag"] == "under_invested" and "give it more budget" in ref["message"]
    assert cold["flag"] is None or cold["flag"] == "over_invested"
    # Referral customers never churn: 12 months of 100 a month; cold ones leave after 6.
    assert ref["retention_12m"] == 1.0 and ref["retained_value_12m"] == pytest.approx(1200)
    assert cold["retained_value_12m"] < 700
    assert rows["leads"].sum() == report.overall["leads"]


def test_without_subscriptions_retained_value_is_blank_and_said_so(known):
    from dataclasses import replace

    report = channel_insights(replace(known, subscriptions=None))
    assert report.rows["retained_value_12m"].isna().all()
    assert any("subscriptions" in n for n in report.notes)


def test_bad_input_gets_a_clear_error(known):
    with pytest.raises(ValueError, match="must be one of"):
        channel_insights(known, by="colour")
    with pytest.raises(LookupError, match="unknown team"):
        channel_insights(known, team="nowhere")


def test_on_the_demo_referral_wins_more_and_is_flagged(demo_history):
    """The generator plants a referral source: ~18 % of leads with a +1.3 sd quality."""
    out = channels_overview(demo_history)
    rows = {r["lead_source"]: r for r in out["channels"]}
    ref = rows["referral"]
    assert 0.13 < ref["lead_share"] < 0.23
    assert ref["win_rate_low"] > out["overall"]["win_rate_high"]
    assert ref["flag"] == "under_invested"
    assert all(r["win_rate"] < ref["win_rate_low"] for k, r in rows.items() if k != "referral")
    assert {r["product_line"] for r in out["product_lines"]} >= {"platform", "custom_solution"}
    # ... and long enterprise cycles in North America, short ones in APAC's velocity team.
    cycles = {r["region"]: r["cycle_days"] for r in out["regions"]}
    assert max(cycles, key=cycles.get) == "North America"
    assert min(cycles, key=cycles.get) == "APAC"
    assert cycles["APAC"] < 0.6 * out["overall"]["cycle_days"] < cycles["North America"]
    json.dumps(out)  # the CLI and the API send it as is
