"""Hand-over risk: deals and accounts whose owner changed, and what the successor is missing.

``opportunities.owner_rep_id`` and ``accounts.owner_rep_id`` hold the current owner; an
earlier owner shows as the rep of earlier outbound activities. A deal or account is *handed
over* when its latest outbound touch by another rep came before the current owner's first
(or the current owner never touched it). For each open deal and paying account handed over,
the successor may be missing:

* ``no_decision_maker`` - no contact with the role ``decision_maker`` on the account;
* ``no_contact_30d`` - nothing logged on it (any rep, any direction) in the last 30 days;
* ``no_next_step`` - the new owner has not touched it since the hand-over.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from salespilot.features.history import History
from salespilot.features.names import unknown_name
from salespilot.features.pit import data_as_of


@dataclass(frozen=True)
class HandoverConfig:
    quiet_days: float = 30.0
    intro_days: float = 7.0  # a new owner's touch within this many days is an introduction


def _handovers(history: History, key: str, owners: pd.Series, as_of: pd.Timestamp) -> pd.DataFrame:
    """Per entity (``key`` = opportunity_id or account_id) with a hand-over: the previous
    owner, when the hand-over happened (the previous owner's last touch), and the new owner's
    first touch after it (NaT if none)."""
    act = history.activities
    cols = ["previous_owner", "handed_over_at", "first_new_touch"]
    if act is None or act.empty:
        return pd.DataFrame(columns=cols)
    a = act[(act["occurred_at"] < as_of) & (act["direction"] == "outbound") & act[key].notna()]
    a = a[a[key].isin(owners.index)]
    a = a.assign(owner=owners.reindex(a[key]).to_numpy())
    others = a[a["rep_id"] != a["owner"]]
    if others.empty:
        return pd.DataFrame(columns=cols)
    last_other = others.sort_values("occurred_at").groupby(key).last()
    mine = a[a["rep_id"] == a["owner"]][[key, "occurred_at"]]
    mine = mine.merge(last_other["occurred_at"].rename("handed_over_at"), on=key)
    after = mine[mine["occurred_at"] > mine["handed_over_at"]]
    first_new = after.groupby(key)["occurred_at"].min()
    before = mine[mine["occurred_at"] <= mine["handed_over_at"]].groupby(key).size()
    out = pd.DataFrame(
        {
            "previous_owner": last_other["rep_id"],
            "handed_over_at": last_other["occurred_at"],
        }
    )
    out["first_new_touch"] = first_new.reindex(out.index)
    # The current owner worked it before the other rep's touch too: a helper, not a hand-over.
    return out[~out.index.isin(before.index)]


def handover_risk(
    history: History,
    *,
    team: str | None = None,
    owner: str | None = None,
    as_of: pd.Timestamp | None = None,
    config: HandoverConfig | None = None,
) -> pd.DataFrame:
    """Open deals and paying accounts handed over to ``team``'s reps (or to ``owner``), each
    with what the successor is missing. Columns: kind, id, account_id, owner_rep_id,
    previous_owner, previous_owner_left, handed_over_at, amount, missing (list), action."""
    c = config or HandoverConfig()
    as_of = pd.Timestamp(as_of) if as_of is not None else data_as_of(history)
    reps = history.reps.set_index("rep_id")
    mine = reps.index
    if team is not None:
        if team not in set(reps["team"].astype(str)):
            raise LookupError(unknown_name("team", team, reps["team"].astype(str)))
        mine = reps.index[reps["team"].astype(str) == team]
    if owner is not None:
        mine = mine.intersection([owner])
    opp = history.opportunities
    open_deals = opp[
        (opp["created_at"] < as_of)
        & (opp["closed_at"].isna() | (opp["closed_at"] >= as_of))
        & opp["owner_rep_id"].isin(mine)
    ]
    frames = []
    deal_owner = open_deals.set_index("opportunity_id")["owner_rep_id"]
    h = _handovers(history, "opportunity_id", deal_owner, as_of)
    if len(h):
        d = open_deals.set_index("opportunity_id").loc[h.index]
        frames.append(
            h.assign(
                kind="deal",
                account_id=d["account_id"],
                owner_rep_id=d["owner_rep_id"],
                amount=d["amount"].astype(float),
            )
        )
    accounts = _paying_accounts(history, as_of)
    acc = history.accounts[history.accounts["account_id"].isin(accounts)]
    acc = acc[acc["owner_rep_id"].isin(mine)]
    acc_owner = acc.set_index("account_id")["owner_rep_id"]
    h = _handovers(history, "account_id", acc_owner, as_of)
    if len(h):
        frames.append(
            h.assign(
                kind="account",
                account_id=h.index,
                owner_rep_id=acc_owner.reindex(h.index),
                amount=accounts.reindex(h.index).to_numpy() * 12.0,
            )
        )
    cols = ["kind", "id", "account_id", "owner_rep_id", "previous_owner", "previous_owner_left",
            "handed_over_at", "amount", "missing", "action"]  # fmt: skip
    if not frames:
        return pd.DataFrame(columns=cols)
    out = pd.concat(frames).rename_axis("id").reset_index()
    left = reps["left_at"].reindex(out["previous_owner"])
    out["previous_owner_left"] = (left.notna() & (left < as_of)).to_numpy()
    # The owner fields are today's: for a past as_of, a hand-over shows only once the previous
    # owner had left or the new owner had touched it, so a later change does not leak back.
    out = out[out["previous_owner_left"] | out["first_new_touch"].notna()]
    out["missing"] = _missing(history, out, as_of, c)
    out = out[out["missing"].map(len) > 0]
    out["action"] = [
        f"{r.owner_rep_id}: {r.kind} {r.id} came from {r.previous_owner}: "
        + "; ".join(_ACTIONS[m] for m in r.missing)
        for r in out.itertuples()
    ]
    return out.sort_values("amount", ascending=False)[cols].reset_index(drop=True)


_ACTIONS = {
    "no_decision_maker": "find and meet the decision maker",
    "no_contact_30d": "call this week, nothing logged in 30 days",
    "no_next_step": "introduce yourself and agree the next step",
}


def handover_note(
    *, previous_owner: str, previous_owner_left: bool, handed_over_at: pd.Timestamp, missing
) -> str:
    """The hand-over note a successor reads in their morning list: where it came from, when,
    and what to do about each thing missing."""
    who = f"{previous_owner}, who has left" if previous_owner_left else previous_owner
    todo = "; ".join(_ACTIONS[m] for m in missing)
    return f"Taken over from {who} (last touch {handed_over_at:%d %b %Y}): {todo}."


def _paying_accounts(history: History, as_of: pd.Timestamp) -> pd.Series:
    """Monthly value of the subscriptions active at ``as_of``, per account."""
    sub = history.subscriptions
    if sub is None or sub.empty:
        return pd.Series(dtype=float)
    active = sub[
        (sub["started_at"] < as_of) & (sub["ended_at"].isna() | (sub["ended_at"] >= as_of))
    ]
    return active.groupby("account_id")["monthly_value"].sum()


def _missing(history: History, rows: pd.DataFrame, as_of: pd.Timestamp, c: HandoverConfig):
    contacts = history.contacts
    dm = set()
    if contacts is not None and not contacts.empty:
        dm = set(contacts.loc[contacts["role"] == "decision_maker", "account_id"])
    act = history.activities
    last_any_deal = pd.Series(dtype="datetime64[ns]")
    last_any_acc = pd.Series(dtype="datetime64[ns]")
    if act is not None and not act.empty:
        a = act[act["occurred_at"] < as_of]
        last_any_deal = (
            a.dropna(subset=["opportunity_id"]).groupby("opportunity_id")["occurred_at"].max()
        )
        last_any_acc = a.groupby("account_id")["occurred_at"].max()
    quiet = as_of - pd.Timedelta(days=c.quiet_days)
    out = []
    for r in rows.itertuples():
        last = (last_any_deal if r.kind == "deal" else last_any_acc).get(r.id, pd.NaT)
        m = []
        if contacts is not None and r.account_id not in dm:
            m.append("no_decision_maker")
        if pd.isna(last) or last < quiet:
            m.append("no_contact_30d")
        if pd.isna(r.first_new_touch):
            m.append("no_next_step")
        out.append(m)
    return out


def handover_kinds(
    history: History, *, as_of: pd.Timestamp | None = None, config: HandoverConfig | None = None
) -> pd.Series:
    """Per deal closed before ``as_of``: ``none``, ``introduced`` (the new owner touched it
    within ``intro_days`` of the hand-over) or ``cold`` (no such touch)."""
    c = config or HandoverConfig()
    as_of = pd.Timestamp(as_of) if as_of is not None else data_as_of(history)
    opp = history.opportunities
    closed = opp[opp["closed_at"].notna() & (opp["closed_at"] < as_of)]
    owners = closed.set_index("opportunity_id")["owner_rep_id"]
    h = _handovers(history, "opportunity_id", owners, as_of)
    kind = pd.Series("none", index=owners.index, name="handover")
    gap = (h["first_new_touch"] - h["handed_over_at"]) / pd.Timedelta(days=1)
    kind[h.index] = np.where(gap.notna() & (gap <= c.intro_days), "introduced", "cold")
    return kind


def handover_win_rates(
    history: History, *, as_of: pd.Timestamp | None = None, config: HandoverConfig | None = None
) -> pd.DataFrame:
    """Win rate of closed deals by :func:`handover_kinds`."""
    kind = handover_kinds(history, as_of=as_of, config=config)
    opp = history.opportunities.set_index("opportunity_id")
    won = opp["status"].reindex(kind.index).eq("won")
    g = won.groupby(kind)
    return pd.DataFrame({"deals": g.size(), "won": g.sum(), "win_rate": g.mean()})
