"""Deliberately naive reference implementations: plain Python loops over events.

Slow and obvious on purpose; the vectorised builders must agree with them exactly.
"""

from __future__ import annotations

import itertools
import math
import statistics

import pandas as pd

from salespilot.features.deals import DEFAULT_STAGE_ORDER
from salespilot.features.history import History
from salespilot.features.interactions import CHANNEL_PLURALS

HOUR = pd.Timedelta(hours=1)
DAY = pd.Timedelta(days=1)


def _records(df: pd.DataFrame | None) -> list[dict]:
    if df is None:
        return []
    return [{k: (None if pd.isna(v) else v) for k, v in r.items()} for r in df.to_dict("records")]


def _median_or_none(values: list[float]):
    return statistics.median(values) if values else None


def naive_deal_rows(history: History, t: pd.Timestamp) -> dict[str, dict]:
    """{opportunity_id: {feature: value}} for the deals open at ``t``."""
    opps = _records(history.opportunities)
    acts = _records(history.activities)
    changes = _records(history.stage_changes)
    contacts = {c["contact_id"]: c for c in _records(history.contacts)}
    reps = {r["rep_id"]: r for r in _records(history.reps)}
    rank = {s: i for i, s in enumerate(DEFAULT_STAGE_ORDER)}
    out: dict[str, dict] = {}
    open_by_account: dict[str, int] = {}
    for o in opps:
        if o["created_at"] < t and (o["closed_at"] is None or o["closed_at"] >= t):
            open_by_account[o["account_id"]] = open_by_account.get(o["account_id"], 0) + 1

    # stage spells (all deals) for the stage norms
    spells: list[tuple[str, pd.Timestamp, float]] = []  # (stage, exit, dwell days)
    close_of = {o["opportunity_id"]: o["closed_at"] for o in opps}
    for o in opps:
        mine = sorted(
            (c for c in changes if c["opportunity_id"] == o["opportunity_id"]),
            key=lambda c: c["changed_at"],
        )
        for i, c in enumerate(mine):
            exits = [mine[i + 1]["changed_at"]] if i + 1 < len(mine) else []
            if close_of[o["opportunity_id"]] is not None:
                exits.append(close_of[o["opportunity_id"]])
            exit_ = min(exits) if exits else None
            if exit_ is not None and exit_ >= c["changed_at"]:
                spells.append((c["stage"], exit_, (exit_ - c["changed_at"]) / DAY))

    spells_by_deal = _naive_spells(opps, changes, reps)
    for o in opps:
        if not (o["created_at"] < t and (o["closed_at"] is None or o["closed_at"] >= t)):
            continue
        oid = o["opportunity_id"]
        row: dict = {}
        mine = sorted(
            (c for c in changes if c["opportunity_id"] == oid and c["changed_at"] < t),
            key=lambda c: c["changed_at"],
        )
        row["stage_moves"] = len(mine)
        skipped, prev = 0, -2
        for c in mine:
            r = rank.get(c["stage"])
            if r is not None:
                if prev >= 0:
                    skipped += max(r - prev - 1, 0)
                prev = r
            else:
                prev = -2  # unknown stage: the next move is not counted as a skip
        row["stages_skipped"] = skipped
        row["stage"] = mine[-1]["stage"] if mine else None
        entered = mine[-1]["changed_at"] if mine else o["created_at"]
        row["days_in_stage"] = (t - entered) / DAY
        row["stage_norm_days"] = _median_or_none(
            [d for s, e, d in spells if s == row["stage"] and e < t]
        )

        a = sorted(
            (x for x in acts if x["opportunity_id"] == oid and x["occurred_at"] < t),
            key=lambda x: x["occurred_at"],
        )
        for ch, plural in CHANNEL_PLURALS.items():
            for di, short in (("outbound", "out"), ("inbound", "in")):
                for w in (7, 30, 90):
                    row[f"{plural}_{short}_{w}d"] = sum(
                        1
                        for x in a
                        if x["channel"] == ch
                        and x["direction"] == di
                        and x["occurred_at"] >= t - pd.Timedelta(days=w)
                    )
        row["activities_total"] = len(a)
        row["days_since_last_touch"] = (t - a[-1]["occurred_at"]) / DAY if a else None
        ins = [x for x in a if x["direction"] == "inbound"]
        outs = [x for x in a if x["direction"] == "outbound"]
        row["days_since_last_inbound"] = (t - ins[-1]["occurred_at"]) / DAY if ins else None
        row["days_since_last_outbound"] = (t - outs[-1]["occurred_at"]) / DAY if outs else None
        last_in_pos = max((i for i, x in enumerate(a) if x["direction"] == "inbound"), default=-1)
        pending = [x for x in a[last_in_pos + 1 :] if x["direction"] == "outbound"]
        row["hours_awaiting_reply"] = (t - pending[0]["occurred_at"]) / HOUR if pending else 0.0
        for ch in ("meeting", "demo"):
            for oc in ("held", "postponed", "cancelled"):
                row[f"{CHANNEL_PLURALS[ch]}_{oc}"] = sum(
                    1 for x in a if x["channel"] == ch and x["outcome"] == oc
                )
        engaged = {
            x["contact_id"]
            for x in a
            if x["contact_id"] is not None
            and (x["direction"] == "inbound" or x["outcome"] in ("connected", "replied", "held"))
        }
        row["contacts_engaged"] = len(engaged)
        row["decision_maker_engaged"] = int(
            any(contacts[c]["role"] == "decision_maker" for c in engaged)
        )
        row["reps_on_deal"] = len({x["rep_id"] for x in outs})

        owner = reps[outs[-1]["rep_id"] if outs else o["owner_rep_id"]]
        row["owner_left"] = int(owner["left_at"] is not None and owner["left_at"] < t)
        row["owner_deals_closed"] = sum(
            1
            for p in opps
            if p["owner_rep_id"] == owner["rep_id"]
            and p["closed_at"] is not None
            and p["closed_at"] < t
        )
        prior = [
            p
            for p in opps
            if p["account_id"] == o["account_id"]
            and p["closed_at"] is not None
            and p["closed_at"] < t
        ]
        row["account_prior_deals_won"] = sum(p["status"] == "won" for p in prior)
        row["account_prior_deals_lost"] = sum(p["status"] == "lost" for p in prior)
        row["account_open_deals"] = open_by_account[o["account_id"]] - 1

        acct = sorted(
            (x for x in acts if x["account_id"] == o["account_id"]),
            key=lambda x: x["occurred_at"],
        )
        delays = [
            (cur["occurred_at"] - prev["occurred_at"]) / HOUR
            for prev, cur in itertools.pairwise(acct)
            if cur["direction"] == "inbound"
            and prev["direction"] == "outbound"
            and cur["occurred_at"] < t
        ]
        row["median_reply_delay_h"] = _median_or_none(delays)
        row.update(_naive_signals(o, a, contacts, acts, t))
        row.update(_naive_pace(o, row, opps, changes, reps, spells_by_deal, t))
        out[oid] = row
    return out


def _naive_signals(o: dict, a: list[dict], contacts: dict, acts: list[dict], t) -> dict:
    """The deal's engagement signals from its activities ``a`` (all strictly before t)."""
    age = (t - o["created_at"]) / DAY
    days = max(age, 1.0)
    outs = [x for x in a if x["direction"] == "outbound"]
    ins = [x for x in a if x["direction"] == "inbound"]
    calls = [x for x in outs if x["channel"] == "call"]
    all_calls = [
        x
        for x in acts
        if x["channel"] == "call" and x["direction"] == "outbound" and x["occurred_at"] < t
    ]
    prior = (sum(x["outcome"] == "connected" for x in all_calls) + 10 * 0.3) / (len(all_calls) + 10)
    meetings = [x for x in a if x["channel"] in ("meeting", "demo")]
    held = [x for x in meetings if x["outcome"] == "held"]
    month = t - pd.Timedelta(days=30)
    row = {
        "outbound_per_day": len(outs) / days,
        "inbound_per_day": len(ins) / days,
        "call_connect_rate": (sum(x["outcome"] == "connected" for x in calls) + 5 * prior)
        / (len(calls) + 5),
        "decision_maker_touched": int(
            any(
                x["contact_id"] is not None
                and contacts.get(x["contact_id"], {}).get("role") == "decision_maker"
                for x in a
            )
        ),
        "meetings_missed_30d": sum(
            x["occurred_at"] >= month and x["outcome"] in ("postponed", "cancelled")
            for x in meetings
        ),
        "meetings_scheduled_30d": sum(x["occurred_at"] >= month for x in meetings),
        "days_since_meeting_held": (t - held[-1]["occurred_at"]) / DAY if held else None,
    }
    for name, pool, w in (
        ("outbound_7d", outs, 7),
        ("outbound_14d", outs, 14),
        ("inbound_14d", ins, 14),
    ):
        recent = sum(x["occurred_at"] >= t - pd.Timedelta(days=w) for x in pool)
        if age - w > 0:
            usual = (len(pool) - recent) / (age - w) * w
            row[f"{name}_vs_usual"] = math.log((recent + 0.5) / (usual + 0.5))
        else:
            row[f"{name}_vs_usual"] = None
    return row


def _naive_spells(opps: list[dict], changes: list[dict], reps: dict) -> dict:
    """{deal: [(team, stage, exit, dwell days)]} of every finished stage spell."""
    out: dict[str, list] = {}
    for o in opps:
        team = reps[o["owner_rep_id"]]["team"] if o["owner_rep_id"] in reps else None
        mine = sorted(
            (c for c in changes if c["opportunity_id"] == o["opportunity_id"]),
            key=lambda c: c["changed_at"],
        )
        for i, c in enumerate(mine):
            exits = [mine[i + 1]["changed_at"]] if i + 1 < len(mine) else []
            if o["closed_at"] is not None:
                exits.append(o["closed_at"])
            exit_ = min(exits) if exits else None
            if exit_ is not None and exit_ >= c["changed_at"] and team is not None:
                out.setdefault(o["opportunity_id"], []).append(
                    (team, c["stage"], exit_, (exit_ - c["changed_at"]) / DAY)
                )
    return out


def _naive_pace(o, row, opps, changes, reps, spells_by_deal, t) -> dict:
    """Team stage norms (median dwell of the team's finished spells) and the deal's pace."""
    spells = sorted((s for deal in spells_by_deal.values() for s in deal), key=lambda s: s[2])
    team = reps[o["owner_rep_id"]]["team"] if o["owner_rep_id"] in reps else None
    norm = _median_or_none(
        [d for tm, st, e, d in spells if tm == team and st == row["stage"] and e < t]
    )
    rels = []
    for tm, st, e, d in spells_by_deal.get(o["opportunity_id"], []):
        if e >= t:
            continue
        # the team's norm from the spells that ended before this one (ties: earlier in order)
        same = [s for s in spells if s[0] == tm and s[1] == st]
        before = same[: next(i for i, s in enumerate(same) if s[2] == e and s[3] == d)]
        if before:
            rels.append(math.log((d + 0.5) / (statistics.median(x[3] for x in before) + 0.5)))
    return {
        "team_stage_norm_days": norm,
        "days_in_stage_vs_team_norm": row["days_in_stage"] / norm if norm else None,
        "pace_vs_team": sum(rels) / len(rels) if rels else None,
    }


def naive_account_rows(history: History, t: pd.Timestamp) -> dict[str, dict]:
    """{account_id: {feature: value}} for the accounts with a subscription active at ``t``."""
    subs = _records(history.subscriptions)
    acts = _records(history.activities)
    opps = _records(history.opportunities)
    reps = {r["rep_id"]: r for r in _records(history.reps)}
    accounts = {a["account_id"]: a for a in _records(history.accounts)}

    def active(s, at):
        return s["started_at"] < at and (s["ended_at"] is None or s["ended_at"] >= at)

    out: dict[str, dict] = {}
    for aid in sorted({s["account_id"] for s in subs}):
        mine = [s for s in subs if s["account_id"] == aid]
        now = [s for s in mine if active(s, t)]
        if not now:
            continue
        row: dict = {}
        row["active_monthly_value"] = sum(s["monthly_value"] for s in now)
        row["active_subscriptions"] = len(now)
        row["products_held"] = len({s["product_line"] for s in now})
        row["monthly_value_90d_ago"] = sum(
            s["monthly_value"] for s in mine if active(s, t - 90 * DAY)
        )
        ended = [s for s in mine if s["ended_at"] is not None and s["ended_at"] < t]
        row["subscriptions_ended"] = len(ended)
        row["value_ended_180d"] = sum(
            s["monthly_value"] for s in ended if s["ended_at"] >= t - 180 * DAY
        )
        row["customer_tenure_days"] = (
            t - min(s["started_at"] for s in mine if s["started_at"] < t)
        ) / DAY
        a = sorted(
            (x for x in acts if x["account_id"] == aid and x["occurred_at"] < t),
            key=lambda x: x["occurred_at"],
        )
        row["activities_30d"] = sum(x["occurred_at"] >= t - 30 * DAY for x in a)
        row["activities_prev_90d"] = sum(
            t - 120 * DAY <= x["occurred_at"] < t - 30 * DAY for x in a
        )
        row["inbound_30d"] = sum(
            x["occurred_at"] >= t - 30 * DAY and x["direction"] == "inbound" for x in a
        )
        row["days_since_last_touch"] = (t - a[-1]["occurred_at"]) / DAY if a else None
        ins = [x for x in a if x["direction"] == "inbound"]
        row["days_since_last_inbound"] = (t - ins[-1]["occurred_at"]) / DAY if ins else None
        meets = [x for x in a if x["channel"] in ("meeting", "demo") and x["outcome"] == "held"]
        row["days_since_last_meeting"] = (t - meets[-1]["occurred_at"]) / DAY if meets else None
        outs = [x for x in a if x["direction"] == "outbound"]
        owner = reps.get(outs[-1]["rep_id"] if outs else accounts[aid]["owner_rep_id"])
        row["owner_left"] = int(
            owner is not None and owner["left_at"] is not None and owner["left_at"] < t
        )
        switches = [
            cur for prev, cur in itertools.pairwise(outs) if cur["rep_id"] != prev["rep_id"]
        ]
        row["days_since_owner_change"] = (
            (t - switches[-1]["occurred_at"]) / DAY if switches else None
        )
        row["owner_changed_without_handover"] = int(
            bool(switches)
            and (t - switches[-1]["occurred_at"]) <= 180 * DAY
            and not (
                switches[-1]["channel"] in ("meeting", "demo") and switches[-1]["outcome"] == "held"
            )
        )
        row.update(_naive_engagement(acts, a, mine, t))
        mine_opps = [o for o in opps if o["account_id"] == aid]
        open_ = [
            o
            for o in mine_opps
            if o["created_at"] < t and (o["closed_at"] is None or o["closed_at"] >= t)
        ]
        row["open_deals"] = len(open_)
        row["open_pipeline_amount"] = sum(o["amount"] for o in open_)
        closed = [
            o
            for o in mine_opps
            if o["closed_at"] is not None and t - 365 * DAY <= o["closed_at"] < t
        ]
        row["deals_won_365d"] = sum(o["status"] == "won" for o in closed)
        row["deals_lost_365d"] = sum(o["status"] == "lost" for o in closed)
        out[aid] = row
    return out


def _naive_engagement(all_acts: list[dict], a: list[dict], subs: list[dict], t) -> dict:
    """The customer-engagement rates of an account's row (see accounts._engagement_features)."""
    no_deal = [x for x in a if x["opportunity_id"] is None]
    cin = [x for x in no_deal if x["direction"] == "inbound"]
    touches = [x for x in no_deal if x["direction"] == "outbound"]
    since = min(s["started_at"] for s in subs if s["started_at"] < t)
    first_activity = min((x["occurred_at"] for x in all_acts), default=None)
    start = max(since, first_activity) if first_activity is not None and first_activity < t else t

    def weeks(hl_days: float) -> float:  # the exposure weighted like the events
        span = max((t - start) / DAY, 0.0)
        return hl_days / math.log(2) * -math.expm1(-math.log(2) * span / hl_days) / 7

    def rate(events: list[dict], hl_days: float):
        w = sum(2 ** (-((t - x["occurred_at"]) / DAY) / hl_days) for x in events)
        return w / weeks(hl_days) if weeks(hl_days) > 0 else None

    row = {
        f"customer_inbound_rate_{k}": rate(cin, d)
        for k, d in (("4w", 28), ("13w", 91), ("26w", 182))
    }
    life_weeks = (t - start) / DAY / 7
    life = sum(x["occurred_at"] >= start for x in cin) / life_weeks if life_weeks > 0 else None
    row["customer_inbound_rate_life"] = life
    r13, prior = row["customer_inbound_rate_13w"], 0.5 / 13
    row["customer_inbound_vs_usual"] = (
        (r13 + prior) / (life + prior) if r13 is not None and life is not None else None
    )
    row["customer_touch_rate_13w"] = rate(touches, 91)
    meetings = [
        x
        for x in touches
        if x["channel"] in ("meeting", "demo") and x["occurred_at"] >= t - 180 * DAY
    ]
    missed = sum(x["outcome"] in ("postponed", "cancelled") for x in meetings)
    row["customer_meetings_missed_180d"] = missed
    row["customer_meetings_held_180d"] = len(meetings) - missed
    return row


def naive_churn_label(
    history: History, account_id: str, t: pd.Timestamp, horizon: pd.Timedelta, end: pd.Timestamp
):
    """1/0/None: paid coverage runs out in [t, t + horizon), by walking the subscriptions."""
    subs = [s for s in _records(history.subscriptions) if s["account_id"] == account_id]
    far = pd.Timestamp.max
    reach = max(
        (s["ended_at"] or far)
        for s in subs
        if s["started_at"] < t and (s["ended_at"] is None or s["ended_at"] >= t)
    )
    changed = True
    while changed and reach != far:
        changed = False
        for s in subs:
            e = s["ended_at"] or far
            if s["started_at"] <= reach < e:
                reach, changed = e, True
    if t + horizon > end:  # the horizon is not fully observed
        return None
    return 1.0 if reach != far and reach < t + horizon else 0.0


def naive_attempt_rows(history: History) -> dict[str, dict]:
    """{activity_id: {count/rate feature: value}} by looping over every earlier attempt."""
    from zoneinfo import ZoneInfo

    from salespilot.features.contacts import (
        HOUR_BAND_EDGES,
        POPULATION_PRIOR_ATTEMPTS,
        RATE_PRIOR_ATTEMPTS,
    )

    zone = {c["contact_id"]: c["timezone"] for c in _records(history.contacts)}
    attempts = []
    for x in _records(history.activities):
        if (
            x["direction"] != "outbound"
            or x["channel"] not in ("call", "email")
            or x["contact_id"] is None
        ):
            continue
        local = x["occurred_at"].tz_localize("UTC").astimezone(ZoneInfo(zone[x["contact_id"]]))
        band = sum(1 for edge in HOUR_BAND_EDGES[1:] if local.hour >= edge)
        ok = {"call": "connected", "email": "replied"}[x["channel"]]
        success = None if x["outcome"] is None else float(x["outcome"] == ok)
        known_at = x["occurred_at"] + (
            pd.Timedelta(hours=24) if x["channel"] == "email" else pd.Timedelta(0)
        )
        attempts.append(
            {
                **x,
                "hour": local.hour,
                "weekday": local.weekday(),
                "band": band,
                "success": success,
                "known_at": known_at,
            }
        )

    def rate(pool, prior, strength):
        return len(pool), (sum(p["success"] for p in pool) + strength * prior) / (
            len(pool) + strength
        )

    out = {}
    for a in attempts:
        t = a["occurred_at"]
        known = [
            p
            for p in attempts
            if p["success"] is not None and p["known_at"] < t and p["channel"] == a["channel"]
        ]
        _, pop = rate(known, 0.5, 2.0)
        _, pop_band = rate(
            [p for p in known if p["band"] == a["band"]], pop, POPULATION_PRIOR_ATTEMPTS
        )
        _, pop_day = rate(
            [p for p in known if p["weekday"] == a["weekday"]], pop, POPULATION_PRIOR_ATTEMPTS
        )
        row = {"local_hour": a["hour"], "local_weekday": a["weekday"], "population_rate": pop}
        for who in ("contact", "account"):
            key = f"{who}_id"
            mine = [p for p in known if p[key] == a[key]]
            row[f"{who}_attempts"], row[f"{who}_rate"] = rate(mine, pop, RATE_PRIOR_ATTEMPTS)
            _, row[f"{who}_band_rate"] = rate(
                [p for p in mine if p["band"] == a["band"]], pop_band, RATE_PRIOR_ATTEMPTS
            )
            _, row[f"{who}_weekday_rate"] = rate(
                [p for p in mine if p["weekday"] == a["weekday"]], pop_day, RATE_PRIOR_ATTEMPTS
            )
        row["contact_attempts_7d"] = sum(
            1
            for p in attempts
            if p["contact_id"] == a["contact_id"]
            and t - pd.Timedelta(days=7) <= p["occurred_at"] < t
        )
        row["label_success"] = a["success"]
        out[a["activity_id"]] = row
    return out
