"""The weekly brief and hand-over risk: contract keys, figures checked against the history."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from salespilot.targets.brief import weekly_brief
from salespilot.targets.forecast import ForecastConfig
from salespilot.targets.handover import handover_kinds, handover_risk, handover_win_rates

FAST = ForecastConfig(simulations=400)
BRIEF_KEYS = {"team", "week", "opportunities", "new_opportunities", "avg_stages_per_deal",
              "silent_customers"}  # fmt: skip


@pytest.fixture(scope="module")
def brief(demo_history):
    return weekly_brief(demo_history, "NA Enterprise", as_of=pd.Timestamp("2026-05-04"),
                        forecast_config=FAST)  # fmt: skip


def test_the_brief_keeps_the_contract(brief):
    assert set(brief) >= BRIEF_KEYS
    assert brief["week"] == "2026-W18" and brief["week_start"] == "2026-04-27"
    assert len(brief["opportunities"]) == 3
    values = [o["expected_value"] for o in brief["opportunities"]]
    assert values == sorted(values, reverse=True) and values[-1] > 0
    assert all(o["title"] and o["action"] for o in brief["opportunities"])
    json.dumps(brief)


def test_every_opportunity_names_what_to_act_on(demo_history):
    from salespilot.targets.brief import improvement_opportunities

    found, _ = improvement_opportunities(
        demo_history, "NA Enterprise", as_of=pd.Timestamp("2026-05-04"), forecast_config=FAST
    )
    assert len(found) >= 3
    reps = set(demo_history.reps["rep_id"])
    for o in found:
        s, source = o["subject"], o["source"]
        if source.startswith("gap:"):
            assert s["rep_id"] in reps and s["factor"] == source[4:]
            assert s["rep_value"] < s["norm"]  # a factor below the team's norm
        elif source == "channels":
            assert s["from"] != s["to"] and s["share"] > 0
        elif source == "health":
            assert s["rep_id"] in reps and s["recent_leads_per_week"] < s["plan_leads_per_week"]
        else:
            assert source == "handover" and s["kind"] in ("deal", "account")


def test_the_weeks_figures_match_the_history(brief, demo_history):
    opp = demo_history.opportunities
    reps = demo_history.reps
    team = set(reps.loc[reps["team"] == "NA Enterprise", "rep_id"])
    week = opp[opp["owner_rep_id"].isin(team) & (opp["created_at"] >= "2026-04-27")
               & (opp["created_at"] < "2026-05-04")]  # fmt: skip
    assert brief["new_opportunities"] == len(week) > 0
    # The demo's open stages: qualification, discovery, demo, proposal, negotiation.
    assert 1.0 <= brief["avg_stages_per_deal"] <= 5.0
    assert brief["silent_customers"] >= 0


def test_handover_risk_names_what_the_successor_is_missing(demo_history):
    risk = handover_risk(demo_history)
    assert len(risk) > 0
    allowed = {"no_decision_maker", "no_contact_30d", "no_next_step"}
    assert all(set(m) <= allowed and m for m in risk["missing"])
    # every row is owned by someone else than the rep it came from
    assert (risk["owner_rep_id"] != risk["previous_owner"]).all()
    with pytest.raises(LookupError, match="unknown team"):
        handover_risk(demo_history, team="nowhere")


def test_a_cold_handover_closes_less_often_than_no_handover(tmp_path_factory):
    """The generator's bad hand-over (no introduction, weeks of silence, a penalty on every
    later stage) shows as a lower win rate of the deals no new owner touched within a week."""
    from salespilot.features.demo import generate_history
    from salespilot.features.demo.knobs import DemoKnobs
    from salespilot.features.loader import load_history

    out = tmp_path_factory.mktemp("handover_demo")
    knobs = DemoKnobs(leaver_rate_per_year=0.8, bad_handover_share=1.0)
    generate_history(out, reps=12, months=12, seed=3, end=pd.Timestamp("2026-06-30"),
                     knobs=knobs)  # fmt: skip
    history = load_history(out)
    kinds = handover_kinds(history)
    truth = pd.read_csv(out / "truth" / "opportunity_latent.csv", index_col="opportunity_id")
    bad = truth["handed_over_badly"].astype(str).str.lower().eq("true").reindex(kinds.index)
    # The deals the generator handed over badly are the ones seen as cold.
    assert bad.sum() >= 30
    assert (kinds[bad] == "cold").mean() > 0.8
    assert (kinds == "cold").sum() <= 1.5 * bad.sum()
    rates = handover_win_rates(history)
    assert rates.loc["cold", "win_rate"] < rates.loc["none", "win_rate"]
