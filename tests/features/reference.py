"""Deliberately naive reference implementations: plain Python loops over events.

Slow and obvious on purpose; the vectorised builders must agree with them exactly.
"""

from __future__ import annotations

import itertools
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
        out[oid] = row
    return out
