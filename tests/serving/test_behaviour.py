"""Behaviour of the ranking with the real trained model: replies help, stalling hurts."""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest


def _with(history, activities=None, stage_changes=None, drop=None):
    acts = history.activities
    if drop is not None:
        acts = acts[~drop(acts)]
    if activities:
        acts = pd.concat(
            [acts, pd.DataFrame(activities).astype(acts.dtypes.to_dict())], ignore_index=True
        )
    sc = history.stage_changes
    if stage_changes:
        sc = pd.concat(
            [sc, pd.DataFrame(stage_changes).astype(sc.dtypes.to_dict())], ignore_index=True
        )
    return dataclasses.replace(history, activities=acts, stage_changes=sc)


def _act(state, deal, when, **kw):
    contact = next(c for c, a in state.contact_account.items() if a == deal.account_id)
    row = dict(
        activity_id=f"T-{deal.entity_id}-{when.value}",
        occurred_at=when,
        rep_id=state.deal_owner[deal.entity_id],
        account_id=deal.account_id,
        contact_id=contact,
        opportunity_id=deal.entity_id,
        channel="email",
        direction="inbound",
        outcome="replied",
        duration_s=float("nan"),
    )
    row.update(kw)
    return row


def _scores(state, history, ids):
    from salespilot.features.deals import deal_snapshot

    rows = deal_snapshot(history, state.as_of)
    rows = rows[rows["opportunity_id"].isin(ids)].reset_index(drop=True)
    p = state.model("win_probability").predict_proba(rows)
    return dict(zip(rows["opportunity_id"].astype(str), p, strict=True))


def _rank_of(state, rep, deal_id, new_score):
    items = state.rep_items[rep]
    me = next(i for i in items if i.entity_id == deal_id)
    stake = new_score * me.value
    return 1 + sum(1 for i in items if i.entity_id != deal_id and i.value_at_stake > stake)


def test_fresh_inbound_reply_does_not_drop_a_deal(state, people):
    deals = [i for i in state.rep_items[people.rep] if i.kind == "deal"]
    seen, chosen = set(), []
    for d in deals:  # one deal per account so their account-level features stay apart
        if d.account_id not in seen:
            seen.add(d.account_id)
            chosen.append(d)
    chosen = chosen[:5]
    reply_at = state.as_of - pd.Timedelta(hours=1)
    h = _with(state.history, activities=[_act(state, d, reply_at) for d in chosen])
    after = _scores(state, h, [d.entity_id for d in chosen])
    for d in chosen:
        assert after[d.entity_id] >= d.score - 1e-6, d.entity_id
        assert _rank_of(state, people.rep, d.entity_id, after[d.entity_id]) <= d.rank


def test_stalled_30_days_does_not_outrank_touched_yesterday(state, people):
    deal = next(i for i in state.rep_items[people.rep] if i.kind == "deal")
    month_ago = state.as_of - pd.Timedelta(days=30)
    stage = deal.title.rsplit("(", 1)[-1].rstrip(")")
    is_deal = lambda a: (a["opportunity_id"] == deal.entity_id) & (a["occurred_at"] >= month_ago)  # noqa: E731
    moved = [dict(opportunity_id=deal.entity_id, changed_at=month_ago, stage=stage)]
    stalled = _with(state.history, drop=is_deal, stage_changes=moved)
    touched = _with(
        state.history,
        drop=is_deal,
        stage_changes=moved,
        activities=[
            _act(
                state,
                deal,
                state.as_of - pd.Timedelta(days=1),
                channel="call",
                direction="outbound",
                outcome="connected",
                duration_s=600.0,
            )
        ],
    )
    s_stalled = _scores(state, stalled, [deal.entity_id])[deal.entity_id]
    s_touched = _scores(state, touched, [deal.entity_id])[deal.entity_id]
    assert s_stalled <= s_touched + 1e-9
    assert _rank_of(state, people.rep, deal.entity_id, s_stalled) >= _rank_of(
        state, people.rep, deal.entity_id, s_touched
    )


def test_shap_contributions_plus_base_equal_raw_score(state):
    s = state.win
    assert len(s) > 0
    assert (s.contrib.sum(axis=1) + s.base) == pytest.approx(s.raw, abs=1e-6)
    c = state.churn
    assert (c.contrib.sum(axis=1) + c.base) == pytest.approx(c.raw, abs=1e-6)
