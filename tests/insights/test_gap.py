"""Gap attribution: exact sums, and known causes found where they were put."""

from __future__ import annotations

import pandas as pd
import pytest

from insights.factories import NORM, build, rep
from salespilot.targets.forecast import ForecastConfig
from salespilot.targets.gap import FUNNEL, gap_attribution
from salespilot.targets.periods import parse_period

FAST = ForecastConfig(simulations=400)


@pytest.fixture(scope="module")
def known():
    """Four reps; R2's demos convert at a third of the norm, R3 brings half the leads."""
    weak_demo = dict(NORM, demo=NORM["demo"] / 3)
    return build(
        [
            rep("R0"),
            rep("R1"),
            rep("R2", passes=weak_demo),
            rep("R3", leads_per_month=4.0),
        ],
        end="2026-04-01",
        target_per_rep=40_000,
    )


@pytest.fixture(scope="module")
def report(known):
    # As of the quarter's start: nothing booked yet, the whole quarter is forecast.
    return gap_attribution(known, "north", parse_period("2026-Q2"), forecast_config=FAST)


def test_every_dimension_sums_to_the_gap(report):
    sums = report.causes.groupby("dimension")["amount"].sum()
    assert set(sums.index) == {"rep", "funnel", "product_line", "lead_source", "industry",
                               "account_size"}  # fmt: skip
    assert sums.to_numpy() == pytest.approx(report.gap, abs=1e-6 * max(1.0, abs(report.gap)))
    assert report.target == 4 * 40_000 and report.gap == pytest.approx(report.target - report.p50)


def test_the_weak_demo_stage_and_the_thin_lead_flow_are_named(report):
    funnel = report.causes[report.causes["dimension"] == "funnel"].set_index("key")
    assert funnel.loc["demo_to_won", "action"].startswith("R2: demos convert at")
    assert funnel.loc["new_leads", "action"].startswith("R3:")
    # Each rep's largest term is the cause planted in that rep, and clearly so.
    per_rep = report.reps.set_index("rep_id")
    terms = per_rep[[f"gap_{k}" for k in FUNNEL]]
    assert terms.loc["R2"].idxmax() == "gap_demo_to_won"
    assert terms.loc["R3"].idxmax() == "gap_new_leads"
    assert terms.loc["R2"].max() > 5 * terms.loc["R2"].drop("gap_demo_to_won").abs().max()
    assert terms.loc["R3"].max() > 3 * terms.loc["R3"].drop("gap_new_leads").abs().max()
    reps = report.causes[report.causes["dimension"] == "rep"].set_index("key")["amount"]
    assert reps["R2"] > reps["R0"] and reps["R3"] > reps["R1"]


def test_no_target_is_a_clear_error(known):
    from dataclasses import replace

    with pytest.raises(ValueError, match="no target for team 'north' in 2026-Q2"):
        gap_attribution(replace(known, targets=None), "north", parse_period("2026-Q2"),
                        forecast_config=FAST)  # fmt: skip
    with pytest.raises(LookupError, match="unknown team"):
        gap_attribution(known, "west", parse_period("2026-Q2"), target=1.0, forecast_config=FAST)


def test_a_given_target_replaces_the_table(known):
    r = gap_attribution(known, "north", parse_period("2026-Q2"), target=200_000,
                        forecast_config=FAST)  # fmt: skip
    assert r.target == 200_000 and r.target_source == "given"
    assert r.causes.groupby("dimension")["amount"].sum().to_numpy() == pytest.approx(r.gap)


def test_on_the_demo_a_past_quarter_decomposes_exactly(demo_history):
    """Mid-quarter on the demo: booked so far + forecast, against the generator's targets."""
    r = gap_attribution(demo_history, "NA Enterprise", parse_period("2026-Q2"),
                        as_of=pd.Timestamp("2026-05-01"), forecast_config=FAST)  # fmt: skip
    assert r.target_source == "targets table" and r.booked > 0
    sums = r.causes.groupby("dimension")["amount"].sum()
    assert sums.to_numpy() == pytest.approx(r.gap, rel=1e-6, abs=1e-3)
    assert r.causes["action"].str.len().min() > 10


def test_a_closed_quarter_of_a_region_is_the_sum_of_its_teams(demo_history):
    """After the quarter nothing is forecast: the region's booked is ``booked(by="region")``,
    its target the table's rows of its reps, and its gap the sum of its teams' gaps there."""
    from salespilot.targets.backtest import booked

    q1 = parse_period("2026-Q1")
    r = gap_attribution(demo_history, "EMEA", q1, by="region", forecast_config=FAST)
    assert r.scope == "EMEA" and r.by == "region" and r.p50 == pytest.approx(r.booked)
    assert r.booked == pytest.approx(booked(demo_history, q1, by="region")["EMEA"])
    reps = demo_history.reps
    emea = set(reps.loc[reps["region"] == "EMEA", "rep_id"])
    t = demo_history.targets
    assert r.target == pytest.approx(
        t.loc[t["rep_id"].isin(emea) & (t["period_start"] == q1.start), "amount"].sum()
    )
    parts = [gap_attribution(demo_history, "EMEA", q1, by="region", team=team,
                             forecast_config=FAST) for team in ("EMEA Central", "EMEA North")]  # fmt: skip
    assert [p.scope for p in parts] == ["EMEA (EMEA Central)", "EMEA (EMEA North)"]
    assert sum(p.gap for p in parts) == pytest.approx(r.gap)
    assert sum(p.booked for p in parts) == pytest.approx(r.booked)
    sums = r.causes.groupby("dimension")["amount"].sum()
    assert sums.to_numpy() == pytest.approx(r.gap, rel=1e-6, abs=1e-3)
    assert set(r.causes.loc[r.causes["dimension"] == "rep", "key"]) <= emea


def test_a_region_mid_quarter_forecasts_its_reps_cells(demo_history):
    """One team's reps in a region are that team's scope: the same target, booked and P50."""
    q2, as_of = parse_period("2026-Q2"), pd.Timestamp("2026-05-01")
    by_region = gap_attribution(demo_history, "North America", q2, by="region",
                                team="NA Enterprise", as_of=as_of, forecast_config=FAST)  # fmt: skip
    by_team = gap_attribution(demo_history, "NA Enterprise", q2, as_of=as_of,
                              forecast_config=FAST)  # fmt: skip
    assert by_region.target == by_team.target and by_region.booked == by_team.booked
    assert by_region.p50 == pytest.approx(by_team.p50)
    whole = gap_attribution(demo_history, "North America", q2, by="region", as_of=as_of,
                            forecast_config=FAST)  # fmt: skip
    assert whole.target > by_team.target and whole.booked > by_team.booked
    sums = whole.causes.groupby("dimension")["amount"].sum()
    assert sums.to_numpy() == pytest.approx(whole.gap, rel=1e-6, abs=1e-3)


def test_an_unknown_region_or_a_team_outside_it_is_a_clear_error(demo_history):
    q2 = parse_period("2026-Q2")
    with pytest.raises(LookupError, match="unknown region 'EMAE'; did you mean 'EMEA'"):
        gap_attribution(demo_history, "EMAE", q2, by="region", target=1.0, forecast_config=FAST)
    with pytest.raises(LookupError, match="team 'APAC Velocity' has no rep in region 'EMEA'"):
        gap_attribution(demo_history, "EMEA", q2, by="region", team="APAC Velocity",
                        target=1.0, forecast_config=FAST)  # fmt: skip


@pytest.fixture(scope="module")
def two_lines():
    """Four reps selling two lines (core 3/4 of the leads, addon 1/4); R2's addon demos
    convert at a fifth of the norm, its core ones at the norm."""
    mix = {"core": 0.75, "addon": 0.25}
    weak_addon = {"addon": dict(NORM, demo=NORM["demo"] / 5)}
    specs = [rep("R0", lines=mix), rep("R1", lines=mix),
             rep("R2", lines=mix, line_passes=weak_addon), rep("R3", lines=mix)]  # fmt: skip
    return build(
        specs,
        end="2026-04-01",
        target_per_rep=40_000,
    )


def test_a_product_lines_target_is_its_share_of_the_teams_and_the_gap_decomposes(two_lines):
    from salespilot.targets.gap import line_share

    q2 = parse_period("2026-Q2")
    r = gap_attribution(two_lines, "addon", q2, by="product_line", team="north",
                        forecast_config=FAST)  # fmt: skip
    assert r.scope == "addon (north)" and r.by == "product_line"
    # the share: addon's won value over the 12 months before the quarter, of all won value
    opp = two_lines.opportunities
    won = opp[opp["status"].eq("won") & (opp["closed_at"] >= pd.Timestamp("2025-04-01"))
              & (opp["closed_at"] < q2.start)]  # fmt: skip
    share = won.loc[won["product_line"] == "addon", "amount"].sum() / won["amount"].sum()
    assert r.line_share.share == pytest.approx(share) and 0.05 < share < 0.25
    assert r.target == pytest.approx(4 * 40_000 * share)
    assert r.target_source == "targets table x line share"
    out = r.to_dict()
    assert out["line_share"]["scope_target"] == 4 * 40_000
    assert out["line_share"]["share"] == pytest.approx(share, abs=1e-6)
    sums = r.causes.groupby("dimension")["amount"].sum()
    assert set(sums.index) == {"rep", "funnel", "product_line", "lead_source", "industry",
                               "account_size"}  # fmt: skip
    assert sums.to_numpy() == pytest.approx(r.gap, abs=1e-6 * max(1.0, abs(r.gap)))
    assert list(r.causes.loc[r.causes["dimension"] == "product_line", "key"]) == ["addon"]
    # only the addon forecast: the two lines' P50s are each below the team's
    core = gap_attribution(two_lines, "core", q2, by="product_line", forecast_config=FAST)
    team = gap_attribution(two_lines, "north", q2, forecast_config=FAST)
    assert core.scope == "core" and 0 < r.p50 < core.p50 < team.p50
    assert r.target + core.target == pytest.approx(team.target)
    assert line_share(two_lines, "core", list(two_lines.reps["rep_id"]), q2,
                      q2.start).share == pytest.approx(1 - share)  # fmt: skip


def test_a_stage_weak_in_one_line_is_named_in_that_lines_gap_only(two_lines):
    q2 = parse_period("2026-Q2")
    addon = gap_attribution(two_lines, "addon", q2, by="product_line", forecast_config=FAST)
    core = gap_attribution(two_lines, "core", q2, by="product_line", forecast_config=FAST)
    funnel = addon.causes[addon.causes["dimension"] == "funnel"].set_index("key")
    assert (
        funnel.loc["demo_to_won", "action"].startswith("R2: demos convert at")
        and "against the line's" in funnel.loc["demo_to_won", "action"]
    )
    terms = addon.reps.set_index("rep_id")[[f"gap_{k}" for k in FUNNEL]]
    assert terms.loc["R2"].idxmax() == "gap_demo_to_won"
    core_terms = core.reps.set_index("rep_id")["gap_demo_to_won"]
    assert core_terms["R2"] < terms.loc["R2", "gap_demo_to_won"] / 3


def test_an_unknown_product_line_or_one_with_no_bookings_is_a_clear_error(two_lines):
    q2 = parse_period("2026-Q2")
    with pytest.raises(LookupError, match="unknown product line 'adon'; did you mean 'addon'"):
        gap_attribution(two_lines, "adon", q2, by="product_line", forecast_config=FAST)
    with pytest.raises(ValueError, match="product line 'addon' won nothing"):
        gap_attribution(two_lines, "addon", q2, by="product_line",
                        as_of=pd.Timestamp("2025-01-15"), forecast_config=FAST)  # fmt: skip


def test_the_region_scope_compares_with_the_regions_norm(demo_history):
    r = gap_attribution(demo_history, "EMEA", parse_period("2026-Q1"), by="region",
                        forecast_config=FAST)  # fmt: skip
    text = " ".join(r.causes.loc[r.causes["dimension"].isin(["rep", "funnel"]), "action"])
    assert "the region's" in text and "team's" not in text
