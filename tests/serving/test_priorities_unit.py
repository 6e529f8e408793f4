"""Ranking, grades, trends and next steps as plain functions (no app, no model)."""

from __future__ import annotations

import pandas as pd
import pytest

from salespilot.serving.priorities import (
    Candidate,
    PreviousScores,
    PriorityConfig,
    grade,
    next_step,
    rank,
    trend,
)
from salespilot.serving.rules import Warning
from salespilot.serving.schemas import Factors

NO_FACTORS = Factors(positive=[], negative=[])


def cand(kind: str, eid: str, score: float, value: float, warnings=()) -> Candidate:
    return Candidate(
        kind=kind, entity_id=eid, account_id="A1", account_name="Acme", title=eid,
        model="win_probability" if kind == "deal" else "churn_risk", score=score, value=value,
        warnings=tuple(warnings), factors=NO_FACTORS, best_time=None, stage="proposal",
    )  # fmt: skip


def test_rank_by_value_at_stake_with_weights():
    cs = [
        cand("deal", "D60", 0.6, 10_000),  # 6 000 at stake
        cand("account", "A40", 0.4, 12_000),  # 4 800
        cand("deal", "D90", 0.9, 1_000),  # 900
        cand("account", "A05", 0.05, 1_000_000),  # below the churn floor: left out
    ]
    items = rank(cs, cfg=PriorityConfig())
    assert [i.entity_id for i in items] == ["D60", "A40", "D90"]
    assert [i.value_at_stake for i in items] == [6000.0, 4800.0, 900.0]
    assert [i.rank for i in items] == [1, 2, 3]
    # weighting accounts double puts the churn risk first
    items = rank(cs, cfg=PriorityConfig(account_weight=2.0))
    assert [i.entity_id for i in items][:2] == ["A40", "D60"]


def test_grades_are_quarters_of_the_list():
    assert [grade(i, 8) for i in range(8)] == list("AABBCCDD")
    assert grade(0, 1) == "A"


def test_trend_against_previous_scoring():
    t = trend(
        kind="deal",
        score=0.5,
        previous=0.4,
        previous_as_of=pd.Timestamp("2026-01-01"),
        threshold=0.03,
    )
    assert t.direction == "improving" and t.change == pytest.approx(0.1)
    assert (
        trend(kind="deal", score=0.39, previous=0.4, previous_as_of=None, threshold=0.03).direction
        == "steady"
    )
    assert (
        trend(kind="deal", score=0.3, previous=0.4, previous_as_of=None, threshold=0.03).direction
        == "declining"
    )
    # churn risk going up is bad news
    assert (
        trend(
            kind="account", score=0.5, previous=0.3, previous_as_of=None, threshold=0.03
        ).direction
        == "declining"
    )
    assert (
        trend(kind="deal", score=0.5, previous=None, previous_as_of=None, threshold=0.03).direction
        == "new"
    )


def test_previous_scores_persist_per_rep(tmp_path):
    store = PreviousScores(tmp_path)
    t1, t2 = pd.Timestamp("2026-03-01"), pd.Timestamp("2026-03-08")
    store.save("R1", t1, {"deal:O1": 0.4})
    store.save("R1", t2, {"deal:O1": 0.6})
    assert store.before("R1", t2) == (t1, {"deal:O1": 0.4})
    assert store.before("R1", t1) == (None, {})
    assert store.before("R2", t2) == (None, {})
    items = rank(
        [cand("deal", "O1", 0.6, 100)],
        cfg=PriorityConfig(),
        previous={"deal:O1": 0.4},
        previous_as_of=t1,
    )
    assert items[0].trend.direction == "improving"


def test_next_step_follows_the_most_pressing_warning():
    w = lambda code, **ev: Warning(code, code, ev)  # noqa: E731
    assert "new owner" in next_step(
        cand(
            "deal",
            "D",
            0.5,
            1,
            [w("no_reply_48h"), w("owner_changed_without_handover", previous_owner_rep_id="R9")],
        )
    )
    assert "Call" in next_step(cand("deal", "D", 0.5, 1, [w("no_reply_48h")]))
    # the code follows SALESPILOT_WARN_NO_REPLY_HOURS; the advice does not depend on the number
    assert "no reply" in next_step(cand("deal", "D", 0.5, 1, [w("no_reply_72h")]))
    assert "unanswered" in next_step(cand("account", "A", 0.5, 1, [w("no_reply_72h")]))
    assert "demo" in next_step(cand("deal", "D", 0.5, 1, [w("repeatedly_postponed")]))
    assert "proposal" in next_step(cand("deal", "D", 0.5, 1, [w("stalled_in_stage")]))
    assert "check-in" in next_step(cand("account", "A", 0.5, 1))


def test_next_step_gives_the_slot_in_the_contacts_and_the_reps_time_with_zones():
    import dataclasses
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from salespilot.serving.schemas import BestTime

    start = datetime(2026, 12, 8, 16, 0, tzinfo=ZoneInfo("Europe/Berlin"))
    bt = BestTime(
        contact_id="C1", contact_role="decision_maker", contact_timezone="Europe/Berlin",
        contact_local_time=start, rep_timezone="Europe/London",
        rep_local_time=start.astimezone(ZoneInfo("Europe/London")), connect_probability=0.4,
    )  # fmt: skip
    text = next_step(dataclasses.replace(cand("deal", "D", 0.5, 1), best_time=bt))
    assert "Tue 16:00 their time (Europe/Berlin), Tue 15:00 yours (Europe/London)" in text
