"""Account snapshots for the churn-risk model: one row per account paying at ``as_of``.

An account is in the snapshot when at least one of its subscriptions is active at as_of
(started before it, not ended before it). Every value comes from events strictly before as_of;
:func:`add_account_labels` adds ``label_churned`` from the future.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from salespilot.features.custom_fields import add_custom_features
from salespilot.features.history import History
from salespilot.features.interactions import empty_activities
from salespilot.features.pit import (
    NS_PER_DAY,
    EventIndex,
    as_of_index,
    cached,
    days_between,
    has_left_at,
    is_active_at,
    observed_end,
    to_ns,
)

NAT = np.iinfo(np.int64).min
BIG = np.iinfo(np.int64).max

ACCOUNT_CONTEXT_COLUMNS: tuple[str, ...] = (
    "account_id",
    "as_of",
    "owner_rep_id",
    "annual_value",
    "team",
    "region",
)
ACCOUNT_CATEGORICAL_FEATURES: tuple[str, ...] = ("industry", "account_region")
#: Model features of an account snapshot, in table order.
ACCOUNT_FEATURES: tuple[str, ...] = (
    "industry",
    "account_region",
    "employees",
    "account_age_days",
    "customer_tenure_days",
    "active_monthly_value",
    "active_subscriptions",
    "products_held",
    "monthly_value_90d_ago",
    "monthly_value_change_90d",
    "subscriptions_ended",
    "value_ended_180d",
    "activities_30d",
    "activities_prev_90d",
    "activity_trend",
    "inbound_30d",
    "inbound_prev_90d",
    "inbound_trend",
    "outbound_30d",
    "days_since_last_touch",
    "days_since_last_inbound",
    "days_since_last_meeting",
    "owner_tenure_days",
    "owner_left",
    "days_since_owner_change",
    "owner_changed_without_handover",
    "open_deals",
    "open_pipeline_amount",
    "deals_won_365d",
    "deals_lost_365d",
)
HANDOVER_LOOKBACK = pd.Timedelta(days=180)


def account_snapshot(history: History, as_of: pd.Timestamp | str | Iterable) -> pd.DataFrame:
    """Point-in-time features of every account with an active subscription at ``as_of``."""
    subs = _subscriptions(history)
    grid = as_of_index(as_of)
    started, ended = to_ns(subs["started_at"]), to_ns(subs["ended_at"])
    value = subs["monthly_value"].to_numpy(dtype=np.float64)
    accounts_of_sub = subs["account_id"].to_numpy()

    parts = []
    for t in grid.asi8:
        now = is_active_at(started, ended, t)
        if not now.any():
            continue
        ago = is_active_at(started, ended, t - 90 * NS_PER_DAY)
        frame = pd.DataFrame(
            {
                "account_id": accounts_of_sub,
                "v_now": np.where(now, value, 0.0),
                "n_now": now.astype(np.int64),
                "v_ago": np.where(ago, value, 0.0),
                "product": subs["product_line"].where(now),
            }
        )
        agg = frame.groupby("account_id", sort=True).agg(
            active_monthly_value=("v_now", "sum"),
            active_subscriptions=("n_now", "sum"),
            products_held=("product", "nunique"),
            monthly_value_90d_ago=("v_ago", "sum"),
        )
        agg = agg[agg["active_subscriptions"] > 0].reset_index()
        agg.insert(1, "as_of", pd.Timestamp(t))
        parts.append(agg)
    if not parts:
        return _empty_snapshot()
    rows = pd.concat(parts, ignore_index=True)
    ids = rows["account_id"].to_numpy()
    t = to_ns(rows["as_of"])

    acc = history.accounts.set_index("account_id")
    rows["industry"] = acc["industry"].reindex(ids).to_numpy()
    rows["account_region"] = acc["region"].reindex(ids).to_numpy()
    rows["employees"] = acc["employees"].reindex(ids).astype("float64").to_numpy()
    rows["account_age_days"] = days_between(t, to_ns(acc["created_at"].reindex(ids)))
    started_idx, ended_idx = cached(
        history,
        "accounts.subscriptions",
        lambda: (
            EventIndex(accounts_of_sub, subs["started_at"]),
            EventIndex(accounts_of_sub, subs["ended_at"], {"value": value}),
        ),
    )
    rows["customer_tenure_days"] = days_between(t, started_idx.at(ids, t).first_time())
    rows["monthly_value_change_90d"] = rows["active_monthly_value"] - rows["monthly_value_90d_ago"]
    ended_q = ended_idx.at(ids, t)
    rows["subscriptions_ended"] = ended_q.count()
    rows["value_ended_180d"] = ended_q.sum("value", pd.Timedelta(days=180))

    owner = _owner_at(history, ids, t, acc["owner_rep_id"].reindex(ids).to_numpy())
    rows = rows.assign(**_activity_features(history, ids, t))
    rows = rows.assign(**_owner_features(history, owner, ids, t))
    rows = rows.assign(**_deal_features(history, ids, t))

    reps = history.reps.set_index("rep_id")
    current_owner = acc["owner_rep_id"].reindex(ids).to_numpy()
    rows["owner_rep_id"] = current_owner
    rows["annual_value"] = 12.0 * rows["active_monthly_value"]
    rows["team"] = reps["team"].reindex(current_owner).to_numpy()
    rows["region"] = reps["region"].reindex(current_owner).to_numpy()
    for c in ACCOUNT_CATEGORICAL_FEATURES:
        rows[c] = _as_category(rows[c])
    out = rows[list(ACCOUNT_CONTEXT_COLUMNS) + list(ACCOUNT_FEATURES)].reset_index(drop=True)
    # A customer's own fields declared as features (custom_fields.json): custom_<name> columns.
    return add_custom_features(out, history, "accounts")


def add_account_labels(snapshot: pd.DataFrame, history: History, horizon_days: int) -> pd.DataFrame:
    """Add ``label_churned``: the active monthly value drops to zero within the horizon.

    1 if the account's paid coverage (its subscriptions merged end to end) runs out in
    ``[as_of, as_of + horizon)``; 0 if it lasts past the horizon; NaN when it is still running
    at the history's end and the horizon reaches past that end.
    """
    subs = _subscriptions(history)
    seg = _coverage_segments(subs)
    idx = EventIndex(seg["account_id"], seg["start"], {"end": seg["end"].to_numpy()})
    t = to_ns(snapshot["as_of"])
    cover_end = idx.at(snapshot["account_id"].to_numpy(), t).last_ns("end")
    cover_end = np.where(cover_end == BIG, NAT, cover_end)
    horizon_end = t + int(horizon_days) * NS_PER_DAY
    end = observed_end(history).value
    runs_out = cover_end != NAT
    churned = runs_out & (cover_end < horizon_end)
    known = churned | (horizon_end <= end) | (runs_out & (cover_end >= horizon_end))
    out = snapshot.copy()
    out["label_churned"] = np.where(known, churned.astype(np.float64), np.nan)
    return out


# --------------------------------------------------------------------------------------------
# private steps
# --------------------------------------------------------------------------------------------
def _subscriptions(history: History) -> pd.DataFrame:
    if history.subscriptions is None:
        raise ValueError(
            "account snapshots (churn risk) need the subscriptions table: add subscriptions.csv "
            "(subscription_id, account_id, product_line, started_at, ended_at, monthly_value)"
        )
    return history.subscriptions


def _empty_snapshot() -> pd.DataFrame:
    cols = list(ACCOUNT_CONTEXT_COLUMNS) + list(ACCOUNT_FEATURES)
    out = pd.DataFrame({c: pd.Series([], dtype="float64") for c in cols})
    out["account_id"] = out["account_id"].astype("str")
    out["as_of"] = out["as_of"].astype("datetime64[ns]")
    return out


def _as_category(s: pd.Series) -> pd.Categorical:
    values = sorted(v for v in s.dropna().unique())
    return pd.Categorical(
        pd.Series(s).astype(object).where(pd.Series(s).notna(), None), categories=values
    )


def _coverage_segments(subs: pd.DataFrame) -> pd.DataFrame:
    """Each account's subscriptions merged into uninterrupted stretches of paid coverage.

    A subscription starting exactly when another ends continues the stretch. ``end`` is the
    int64-ns instant the stretch runs out (int64 max while still running).
    """
    s = pd.DataFrame(
        {
            "account_id": subs["account_id"].to_numpy(),
            "start": to_ns(subs["started_at"]),
            "end": to_ns(subs["ended_at"]),
        }
    )
    s["end"] = np.where(s["end"] == NAT, BIG, s["end"])
    s = s.sort_values(["account_id", "start"], kind="stable")
    reach = s.groupby("account_id", sort=False)["end"].cummax()
    prev_reach = reach.groupby(s["account_id"], sort=False).shift()
    new = prev_reach.isna() | (s["start"] > prev_reach)
    seg_id = new.cumsum()
    seg = s.groupby(seg_id, sort=False).agg(
        account_id=("account_id", "first"), start=("start", "min"), end=("end", "max")
    )
    seg["start"] = seg["start"].astype("datetime64[ns]")
    return seg.reset_index(drop=True)


def _activities(history: History) -> pd.DataFrame:
    return history.activities if history.activities is not None else empty_activities()


def _owner_at(
    history: History, ids: np.ndarray, t: np.ndarray, current_owner: np.ndarray
) -> np.ndarray:
    """Who looked after the account as of t: the rep of its latest outbound touch before t."""

    def build() -> EventIndex:
        acts = _activities(history)
        out = acts[acts["direction"] == "outbound"]
        return EventIndex(
            out["account_id"], out["occurred_at"], {"rep": out["rep_id"].astype(object)}
        )

    last_rep = cached(history, "accounts.owner_at", build).at(ids, t).last("rep")
    return np.where(pd.isna(last_rep), current_owner, last_rep)


def _account_activity_indexes(history: History) -> tuple[EventIndex, EventIndex, EventIndex]:
    acts = _activities(history)
    inbound = (acts["direction"].to_numpy() == "inbound").astype(np.int32)
    meeting = (
        acts["channel"].isin(["meeting", "demo"]).to_numpy()
        & (acts["outcome"] == "held").to_numpy()
    )
    ins = acts[inbound.astype(bool)]
    meetings = acts[meeting]
    return (
        EventIndex(acts["account_id"], acts["occurred_at"], {"inbound": inbound}),
        EventIndex(ins["account_id"], ins["occurred_at"]),
        EventIndex(meetings["account_id"], meetings["occurred_at"]),
    )


def _activity_features(history: History, ids: np.ndarray, t: np.ndarray) -> dict[str, object]:
    all_idx, in_idx, meet_idx = cached(
        history, "accounts.activities", lambda: _account_activity_indexes(history)
    )
    q = all_idx.at(ids, t)
    d30, d120 = pd.Timedelta(days=30), pd.Timedelta(days=120)
    a30 = q.count(d30)
    a_prev = q.count(d120) - a30
    in30 = q.sum("inbound", d30)
    in_prev = q.sum("inbound", d120) - in30
    return {
        "activities_30d": a30,
        "activities_prev_90d": a_prev,
        "activity_trend": (a30 + 1.0) / (a_prev / 3.0 + 1.0),
        "inbound_30d": in30,
        "inbound_prev_90d": in_prev,
        "inbound_trend": (in30 + 1.0) / (in_prev / 3.0 + 1.0),
        "outbound_30d": a30 - in30,
        "days_since_last_touch": q.days_since_last(),
        "days_since_last_inbound": in_idx.at(ids, t).days_since_last(),
        "days_since_last_meeting": meet_idx.at(ids, t).days_since_last(),
    }


def _owner_switches(history: History) -> EventIndex:
    """Outbound touches by a different rep than the account's previous one (owner changes);
    ``intro`` marks a good hand-over: the new rep's first touch is a held meeting."""
    acts = _activities(history)
    out = acts[acts["direction"] == "outbound"].sort_values(
        ["account_id", "occurred_at"], kind="stable"
    )
    same_account = out["account_id"].eq(out["account_id"].shift())
    switch = same_account & out["rep_id"].ne(out["rep_id"].shift())
    sw = out[switch]
    introduced = (sw["channel"].isin(["meeting", "demo"]) & sw["outcome"].eq("held")).to_numpy()
    return EventIndex(sw["account_id"], sw["occurred_at"], {"intro": introduced.astype(np.int8)})


def _owner_features(
    history: History, owner: np.ndarray, ids: np.ndarray, t: np.ndarray
) -> dict[str, object]:
    reps = history.reps.set_index("rep_id")
    hired = to_ns(reps["hired_at"].reindex(owner))
    left = to_ns(reps["left_at"].reindex(owner))
    q = cached(history, "accounts.switches", lambda: _owner_switches(history)).at(ids, t)
    since_change = q.days_since_last()
    recent = since_change <= HANDOVER_LOOKBACK / pd.Timedelta(days=1)
    no_intro = q.last("intro") == 0
    return {
        "owner_tenure_days": days_between(t, hired),
        "owner_left": has_left_at(left, t).astype(np.int8),
        "days_since_owner_change": since_change,
        "owner_changed_without_handover": (recent & no_intro).astype(np.int8),
    }


def _deal_features(history: History, ids: np.ndarray, t: np.ndarray) -> dict[str, object]:
    def build() -> tuple[EventIndex, EventIndex]:
        opps = history.opportunities
        amount = opps["amount"].to_numpy(dtype=np.float64)
        closed = opps[opps["closed_at"].notna()]
        won = (closed["status"] == "won").to_numpy().astype(np.int64)
        return (
            EventIndex(opps["account_id"], opps["created_at"], {"amount": amount}),
            EventIndex(
                closed["account_id"],
                closed["closed_at"],
                {"amount": closed["amount"].to_numpy(dtype=np.float64), "won": won},
            ),
        )

    created_idx, closed_idx = cached(history, "accounts.deals", build)
    created = created_idx.at(ids, t)
    closed_q = closed_idx.at(ids, t)
    year = pd.Timedelta(days=365)
    won_365 = closed_q.sum("won", year)
    return {
        # open at t = created before t minus closed before t (every close follows its creation)
        "open_deals": created.count() - closed_q.count(),
        "open_pipeline_amount": created.sum("amount") - closed_q.sum("amount"),
        "deals_won_365d": won_365,
        "deals_lost_365d": closed_q.count(year) - won_365,
    }
