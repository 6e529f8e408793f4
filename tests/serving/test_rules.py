"""Every warning rule, on a hand-made history that trips it and one that does not."""

from __future__ import annotations

import pandas as pd

from salespilot.serving import rules
from tests.serving.factories import deal, history, ts

NOW = ts(0)


def facts(h, opp="O1"):
    f = rules.deal_facts(h, NOW)
    return f.loc[opp].to_dict()


def codes(h, opp="O1") -> set[str]:
    return {w.code for w in rules.evaluate(facts(h, opp))}


# -- no reply for 48 h ------------------------------------------------------------------------


def test_no_reply_trips_after_48h_without_inbound():
    h = history(activities=[dict(occurred_at=ts(-3), channel="email", direction="outbound")])
    w = rules.rule_no_reply(facts(h))
    assert w is not None and w.code == "no_reply_48h"
    assert w.evidence["hours_without_reply"] == 72.0
    assert w.evidence["last_outbound_channel"] == "email"


def test_no_reply_quiet_when_customer_answered_or_too_recent():
    answered = history(
        activities=[
            dict(occurred_at=ts(-3), direction="outbound"),
            dict(occurred_at=ts(-2), direction="inbound", outcome="replied"),
        ]
    )
    recent = history(activities=[dict(occurred_at=ts(0, hours=-47), direction="outbound")])
    assert rules.rule_no_reply(facts(answered)) is None
    assert rules.rule_no_reply(facts(recent)) is None


def test_no_reply_code_names_the_configured_threshold():
    h = history(activities=[dict(occurred_at=ts(-4), channel="email", direction="outbound")])
    w = rules.rule_no_reply(facts(h), rules.RuleConfig(no_reply_hours=72))
    assert w is not None and w.code == "no_reply_72h"
    assert w.evidence["threshold_hours"] == 72
    assert (
        rules.rule_no_reply(facts(h), rules.RuleConfig(no_reply_hours=36.5)).code
        == "no_reply_36.5h"
    )


def test_events_at_or_after_as_of_are_not_known():
    h = history(
        activities=[
            dict(occurred_at=ts(-3), direction="outbound"),
            dict(occurred_at=NOW, direction="inbound", outcome="replied"),  # exactly at as_of
        ]
    )
    assert rules.rule_no_reply(facts(h)) is not None


# -- stalled in a stage -------------------------------------------------------------------------


def _staged(days_in_current: float, norm: float) -> object:
    # O2 and O3 went through "proposal" in `norm` days: that is the stage's norm.
    sc = [
        dict(opportunity_id="O1", changed_at=ts(-days_in_current), stage="proposal"),
        dict(opportunity_id="O2", changed_at=ts(-100), stage="proposal"),
        dict(opportunity_id="O2", changed_at=ts(-100 + norm), stage="negotiation"),
        dict(opportunity_id="O3", changed_at=ts(-90), stage="proposal"),
        dict(opportunity_id="O3", changed_at=ts(-90 + norm), stage="negotiation"),
    ]
    opps = [
        deal(),
        deal(opportunity_id="O2", created_at=ts(-120)),
        deal(opportunity_id="O3", created_at=ts(-120)),
    ]
    return history(opportunities=opps, stage_changes=sc)


def test_stalled_trips_beyond_stage_norm_and_five_days():
    w = rules.rule_stalled(facts(_staged(days_in_current=20, norm=10)))
    assert w is not None
    assert w.evidence == {
        "stage": "proposal",
        "days_in_stage": 20.0,
        "stage_norm_days": 10.0,
        "threshold_days": 10.0,
    }


def test_stalled_quiet_within_norm_or_within_five_days():
    assert rules.rule_stalled(facts(_staged(days_in_current=8, norm=10))) is None
    # beyond a 2-day norm but not beyond the 5-day floor
    assert rules.rule_stalled(facts(_staged(days_in_current=4, norm=2))) is None
    assert rules.rule_stalled(facts(_staged(days_in_current=6, norm=2))) is not None


def test_rules_without_data_are_left_out_and_said_to_be():
    """No stage history: "days in stage" would be the deal's age against a default norm
    ("stalled in its stage for 407 days"); the rule stays quiet and the history says why."""
    bare = history(opportunities=[deal(created_at=ts(-407))])  # no stages, no activities
    assert rules.rule_stalled(facts(bare)) is None
    left_out = rules.rules_left_out(bare)
    assert "no stage changes" in left_out["stalled_in_stage"]
    assert {"no_reply_48h", "repeatedly_postponed"} <= set(left_out)
    # with stage history the rule stands on data again
    staged = _staged(days_in_current=20, norm=10)
    assert "stalled_in_stage" not in rules.rules_left_out(staged)


# -- postponed ------------------------------------------------------------------------------------


def test_postponed_twice_trips_once_does_not():
    twice = history(
        activities=[
            dict(occurred_at=ts(-10), channel="demo", outcome="postponed"),
            dict(occurred_at=ts(-5), channel="meeting", outcome="postponed"),
        ]
    )
    once = history(activities=[dict(occurred_at=ts(-5), channel="demo", outcome="postponed")])
    w = rules.rule_postponed(facts(twice))
    assert w is not None and w.evidence["postponed_count"] == 2
    assert rules.rule_postponed(facts(once)) is None


# -- decision maker -------------------------------------------------------------------------------


def test_no_decision_maker_trips_when_only_users_engaged():
    only_user = history(activities=[dict(contact_id="C2", direction="inbound", outcome="replied")])
    dm = history(activities=[dict(contact_id="C1", channel="call", outcome="connected")])
    dm_no_answer = history(activities=[dict(contact_id="C1", channel="call", outcome="no_answer")])
    assert rules.rule_no_decision_maker(facts(only_user)) is not None
    assert rules.rule_no_decision_maker(facts(dm)) is None
    assert rules.rule_no_decision_maker(facts(dm_no_answer)) is not None


# -- past expected close --------------------------------------------------------------------------


def test_past_expected_close():
    late = history(opportunities=[deal(expected_close_at=ts(-4))])
    on_time = history(opportunities=[deal(expected_close_at=ts(4))])
    w = rules.rule_past_close(facts(late))
    assert w is not None and w.evidence["days_past"] == 4.0
    assert rules.rule_past_close(facts(on_time)) is None


# -- owner changed without hand-over -------------------------------------------------------------


def test_owner_changed_without_handover():
    # R2 worked the deal; now R1 owns it and has not touched it since
    no_handover = history(activities=[dict(rep_id="R2", occurred_at=ts(-10))])
    handed_over = history(
        activities=[dict(rep_id="R2", occurred_at=ts(-10)), dict(rep_id="R1", occurred_at=ts(-8))]
    )
    always_mine = history(activities=[dict(rep_id="R1", occurred_at=ts(-10))])
    w = rules.rule_owner_changed(facts(no_handover))
    assert w is not None and w.evidence["previous_owner_rep_id"] == "R2"
    assert rules.rule_owner_changed(facts(handed_over)) is None
    assert rules.rule_owner_changed(facts(always_mine)) is None


def test_closed_deals_are_not_in_the_facts():
    h = history(opportunities=[deal(), deal(opportunity_id="O9", closed_at=ts(-1), status="won")])
    assert list(rules.deal_facts(h, NOW).index) == ["O1"]
    # ... but a deal closed after as_of was still open then
    assert "O9" in rules.deal_facts(h, ts(-2)).index


def test_account_facts_apply_reply_and_owner_rules():
    h = history(activities=[dict(rep_id="R2", opportunity_id=None, occurred_at=ts(-4))])
    f = rules.account_facts(h, NOW).loc["A1"].to_dict()
    got = {w.code for w in rules.evaluate(f, rules.ACCOUNT_RULES)}
    assert got == {"no_reply_48h", "owner_changed_without_handover"}
    assert isinstance(f["as_of"], pd.Timestamp)


# -- the rules and the features read the history the same way --------------------------------


def test_rule_facts_agree_with_the_deal_features(demo_history):
    """The rules' open deals, stage, days in stage and stage norm are the deal features' own
    (one point-in-time definition): on the generated history, at three dates."""
    import numpy as np

    from salespilot.features.deals import deal_snapshot

    for as_of in map(pd.Timestamp, ["2026-02-02", "2026-04-15 13:30", "2026-07-01"]):
        f = rules.deal_facts(demo_history, as_of)
        snap = deal_snapshot(demo_history, as_of).set_index("opportunity_id")
        assert sorted(f.index) == sorted(snap.index)
        snap = snap.loc[f.index]
        assert (f["stage"].astype(str) == snap["stage"].astype(str)).all()
        np.testing.assert_allclose(f["days_in_stage"], snap["days_in_stage"], rtol=1e-12)
        np.testing.assert_allclose(f["stage_norm_days"], snap["stage_norm_days"], rtol=1e-12)


def test_a_stage_left_by_closing_the_deal_counts_in_the_norm_like_in_the_features():
    """O2 sat 12 days in "proposal" and was lost from there (no further stage change): that
    stay is part of the stage's norm for the rules as for the features."""
    from salespilot.features.deals import deal_snapshot

    sc = [
        dict(opportunity_id="O1", changed_at=ts(-30), stage="proposal"),
        dict(opportunity_id="O2", changed_at=ts(-50), stage="proposal"),
    ]
    opps = [
        deal(),
        deal(opportunity_id="O2", created_at=ts(-80), closed_at=ts(-38), status="lost"),
    ]
    h = history(opportunities=opps, stage_changes=sc)
    f = facts(h)
    features = deal_snapshot(h, NOW).set_index("opportunity_id").loc["O1"]
    assert features["stage_norm_days"] == 12.0
    assert f["stage_norm_days"] == 12.0 and f["days_in_stage"] == features["days_in_stage"] == 30
    assert rules.rule_stalled(f).evidence["stage_norm_days"] == 12.0
