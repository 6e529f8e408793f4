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
from salespilot.features.interactions import activities_of, activity_codes, is_in
from salespilot.features.pit import (
    NS_PER_DAY,
    EventIndex,
    as_of_index,
    cached,
    category_column,
    column_codes,
    days_between,
    has_left_at,
    is_active_at,
    observed_end,
    take_column,
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
    "customer_inbound_rate_4w",
    "customer_inbound_rate_13w",
    "customer_inbound_rate_26w",
    "customer_inbound_rate_life",
    "customer_inbound_vs_usual",
    "customer_touch_rate_13w",
    "customer_meetings_held_180d",
    "customer_meetings_missed_180d",
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
#: Half-lives of the exponentially weighted engagement rates (customer_inbound_rate_*).
ENGAGEMENT_HALF_LIVES: dict[str, pd.Timedelta] = {
    "4w": pd.Timedelta(weeks=4),
    "13w": pd.Timedelta(weeks=13),
    "26w": pd.Timedelta(weeks=26),
}


def account_snapshot(
    history: History,
    as_of: pd.Timestamp | str | Iterable,
    *,
    account_ids: Iterable[str] | None = None,
) -> pd.DataFrame:
    """Point-in-time features of every account with an active subscription at ``as_of``.

    ``account_ids`` limits the rows to those accounts (one rep's) before any feature is
    computed; each row is the same as in the full snapshot.
    """
    _subscriptions(history)
    grid = as_of_index(as_of)
    started, ended, value, acc_code, prod_code, n_prod = cached(
        history, "accounts.sub_arrays", lambda: _subscription_arrays(history)
    )
    n_acc = len(history.accounts)
    allowed = None
    if account_ids is not None:
        allowed = history.accounts["account_id"].isin(list(account_ids)).to_numpy()
    cols: dict[str, list[np.ndarray]] = {
        k: []
        for k in (
            "code",
            "t",
            "active_monthly_value",
            "active_subscriptions",
            "products_held",
            "monthly_value_90d_ago",
        )
    }
    for t in grid.asi8:
        now = is_active_at(started, ended, t)
        if not now.any():
            continue
        ago = is_active_at(started, ended, t - 90 * NS_PER_DAY)
        n_now = np.bincount(acc_code[now], minlength=n_acc)
        ids = np.flatnonzero(n_now)
        if allowed is not None:
            ids = ids[allowed[ids]]
        pairs = np.unique(acc_code[now] * n_prod + prod_code[now])
        cols["code"].append(ids)
        cols["t"].append(np.full(ids.size, t, dtype=np.int64))
        cols["active_monthly_value"].append(
            np.bincount(acc_code[now], weights=value[now], minlength=n_acc)[ids]
        )
        cols["active_subscriptions"].append(n_now[ids])
        cols["products_held"].append(np.bincount(pairs // n_prod, minlength=n_acc)[ids])
        cols["monthly_value_90d_ago"].append(
            np.bincount(acc_code[ago], weights=value[ago], minlength=n_acc)[ids]
        )
    if not cols["code"]:
        return _empty_snapshot()
    arrays = {k: np.concatenate(v) for k, v in cols.items()}
    ids, t = arrays.pop("code"), arrays.pop("t")
    acc = history.accounts
    rows = pd.DataFrame(
        {
            "account_id": take_column(history, "accounts", "account_id", ids),
            "as_of": t.astype("datetime64[ns]"),
            **arrays,
        }
    )
    rows["industry"] = category_column(history, "accounts", "industry", ids)
    rows["account_region"] = category_column(history, "accounts", "region", ids)
    rows["employees"] = acc["employees"].astype("float64").to_numpy()[ids]
    rows["account_age_days"] = days_between(t, to_ns(acc["created_at"])[ids])
    started_idx, ended_idx = cached(
        history,
        "accounts.subscriptions",
        lambda: (
            EventIndex(acc_code, started.astype("datetime64[ns]"), n_keys=n_acc),
            EventIndex(acc_code, ended.astype("datetime64[ns]"), {"value": value}, n_keys=n_acc),
        ),
    )
    rows["customer_tenure_days"] = days_between(t, started_idx.at(ids, t).first_time())
    rows["monthly_value_change_90d"] = rows["active_monthly_value"] - rows["monthly_value_90d_ago"]
    ended_q = ended_idx.at(ids, t)
    rows["subscriptions_ended"] = ended_q.count()
    rows["value_ended_180d"] = ended_q.sum("value", pd.Timedelta(days=180))

    current_owner = column_codes(history, "accounts", "owner_rep_id", "rep")[ids]
    owner = _owner_at(history, ids, t, current_owner)
    rows = rows.assign(**_activity_features(history, ids, t))
    customer_since = started_idx.at(ids, t).first_time()
    rows = rows.assign(**_engagement_features(history, ids, t, customer_since))
    rows = rows.assign(**_owner_features(history, owner, ids, t))
    rows = rows.assign(**_deal_features(history, ids, t))

    rows["owner_rep_id"] = take_column(history, "reps", "rep_id", current_owner)
    rows["annual_value"] = 12.0 * rows["active_monthly_value"]
    rows["team"] = take_column(history, "reps", "team", current_owner)
    rows["region"] = take_column(history, "reps", "region", current_owner)
    out = rows[list(ACCOUNT_CONTEXT_COLUMNS) + list(ACCOUNT_FEATURES)].reset_index(drop=True)
    # A customer's own fields declared as features (custom_fields.json): custom_<name> columns.
    return add_custom_features(out, history, "accounts")


def active_account_rows(
    history: History, as_of: pd.Timestamp | str | Iterable
) -> tuple[np.ndarray, np.ndarray]:
    """(account row, as_of ns) of every account with an active subscription at each ``as_of``:
    the rows of :func:`account_snapshot`, without their features."""
    _subscriptions(history)
    started, ended, _, acc_code, _, _ = cached(
        history, "accounts.sub_arrays", lambda: _subscription_arrays(history)
    )
    codes, times = [], []
    for t in as_of_index(as_of).asi8:
        now = is_active_at(started, ended, t)
        ids = np.flatnonzero(np.bincount(acc_code[now], minlength=len(history.accounts)))
        codes.append(ids)
        times.append(np.full(ids.size, t, dtype=np.int64))
    if not codes:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    return np.concatenate(codes), np.concatenate(times)


def add_account_labels(snapshot: pd.DataFrame, history: History, horizon_days: int) -> pd.DataFrame:
    """Add ``label_churned``: the active monthly value drops to zero within the horizon.

    1 if the account's paid coverage (its subscriptions merged end to end) runs out in
    ``[as_of, as_of + horizon)``; 0 if it lasts past the horizon; NaN when the horizon reaches
    past the history's end (its outcome is not fully observed, whichever way it went).
    """
    subs = _subscriptions(history)
    seg = cached(history, "accounts.coverage", lambda: _coverage_segments(history, subs))
    idx = cached(
        history,
        "accounts.coverage_index",
        lambda: EventIndex(
            seg["account_code"].to_numpy(np.int64),
            seg["start"],
            {"end": seg["end"].to_numpy()},
            n_keys=len(history.accounts),
        ),
    )
    t = to_ns(snapshot["as_of"])
    codes = _codes_of(history, snapshot["account_id"])
    cover_end = idx.at(codes, t).last_ns("end")
    cover_end = np.where(cover_end == BIG, NAT, cover_end)
    horizon_end = t + int(horizon_days) * NS_PER_DAY
    end = observed_end(history).value
    runs_out = cover_end != NAT
    churned = runs_out & (cover_end < horizon_end)
    # Known only where the whole horizon has been observed: labelling the early churners of a
    # horizon that runs past the end (and not their retained peers) would leave the latest
    # rows all churned - a biased test period.
    known = horizon_end <= end
    out = snapshot.copy(deep=False)
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


def _codes_of(history: History, account_ids: pd.Series) -> np.ndarray:
    import pyarrow as pa
    import pyarrow.compute as pc

    found = pc.index_in(
        pa.array(account_ids).cast(pa.string()),
        value_set=pa.array(history.accounts["account_id"]).cast(pa.string()),
    )
    return pc.fill_null(found, -1).to_numpy(zero_copy_only=False).astype(np.int64)


def _coverage_segments(history: History, subs: pd.DataFrame) -> pd.DataFrame:
    """Each account's subscriptions merged into uninterrupted stretches of paid coverage.

    A subscription starting exactly when another ends continues the stretch. ``end`` is the
    int64-ns instant the stretch runs out (int64 max while still running).
    """
    s = pd.DataFrame(
        {
            "account_code": column_codes(history, "subscriptions", "account_id", "account"),
            "start": to_ns(subs["started_at"]),
            "end": to_ns(subs["ended_at"]),
        }
    )
    s["end"] = np.where(s["end"] == NAT, BIG, s["end"])
    s = s.sort_values(["account_code", "start"], kind="stable")
    reach = s.groupby("account_code", sort=False)["end"].cummax()
    prev_reach = reach.groupby(s["account_code"], sort=False).shift()
    new = prev_reach.isna() | (s["start"] > prev_reach)
    seg_id = new.cumsum()
    seg = s.groupby(seg_id, sort=False).agg(
        account_code=("account_code", "first"), start=("start", "min"), end=("end", "max")
    )
    seg["start"] = seg["start"].astype("datetime64[ns]")
    return seg.reset_index(drop=True)


def _take(values: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """``values[codes]`` with None where the code is -1 (unknown id)."""
    if values.size == 0:
        return np.full(codes.size, None, dtype=object)
    out = values[np.where(codes >= 0, codes, 0)].astype(object)
    out[codes < 0] = None
    return out


def _subscription_arrays(history: History) -> tuple:
    subs = history.subscriptions
    acc_code = column_codes(history, "subscriptions", "account_id", "account")
    prod_code, prods = pd.factorize(subs["product_line"].to_numpy(dtype=object))
    keep = acc_code >= 0
    return (
        to_ns(subs["started_at"])[keep],
        to_ns(subs["ended_at"])[keep],
        subs["monthly_value"].to_numpy(dtype=np.float64)[keep],
        acc_code[keep],
        prod_code.astype(np.int64)[keep],
        max(len(prods), 1),
    )


def _owner_at(
    history: History, ids: np.ndarray, t: np.ndarray, current_owner: np.ndarray
) -> np.ndarray:
    """Who looked after the account as of t (rep code): the rep of its latest outbound touch."""

    def build() -> EventIndex:
        acts = activities_of(history)
        out = is_in(acts["direction"], "outbound")
        return EventIndex(
            activity_codes(history, "account_id", "account")[out],
            acts["occurred_at"].to_numpy()[out],
            {"rep": activity_codes(history, "rep_id", "rep")[out]},
            n_keys=len(history.accounts),
        )

    last_rep = cached(history, "accounts.owner_at", build).at(ids, t).last("rep")
    return np.where(np.isnan(last_rep), current_owner, last_rep).astype(np.int64)


def _account_activity_indexes(history: History) -> tuple[EventIndex, EventIndex, EventIndex]:
    acts = activities_of(history)
    account = activity_codes(history, "account_id", "account")
    at = acts["occurred_at"].to_numpy()
    inbound = acts["direction"].to_numpy(dtype=object) == "inbound"
    meeting = (
        acts["channel"].isin(["meeting", "demo"]).to_numpy()
        & (acts["outcome"] == "held").to_numpy()
    )
    n = len(history.accounts)
    return (
        EventIndex(account, at, {"inbound": inbound.astype(np.int32)}, n_keys=n),
        EventIndex(account[inbound], at[inbound], n_keys=n),
        EventIndex(account[meeting], at[meeting], n_keys=n),
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


def _customer_activity_indexes(history: History) -> tuple[EventIndex, EventIndex, EventIndex, int]:
    """Activities between the customer and the company outside any deal: the customer's own
    calls, emails and messages (and replies), the rep's check-ins, and customer meetings."""
    acts = activities_of(history)
    account = activity_codes(history, "account_id", "account")
    at = to_ns(acts["occurred_at"])
    no_deal = acts["opportunity_id"].isna().to_numpy()
    inbound = is_in(acts["direction"], "inbound") & no_deal
    outbound = is_in(acts["direction"], "outbound") & no_deal
    meeting = outbound & is_in(acts["channel"], "meeting", "demo")
    missed = is_in(acts["outcome"], "postponed", "cancelled")[meeting].astype(np.int32)
    n = len(history.accounts)
    first = first_activity_ns(history)
    return (
        EventIndex(account[inbound], at[inbound].astype("datetime64[ns]"), n_keys=n),
        EventIndex(account[outbound], at[outbound].astype("datetime64[ns]"), n_keys=n),
        EventIndex(
            account[meeting], at[meeting].astype("datetime64[ns]"), {"missed": missed}, n_keys=n
        ),
        first,
    )


def first_activity_ns(history: History) -> int:
    """The history's first activity (int64 ns; int64 max without any): where the customer
    engagement rates start counting. Read across accounts, so a slice of the history takes
    it from its :class:`~salespilot.features.partitions.CrossAccount`."""
    if history.cross_account is not None:
        return history.cross_account.first_activity_ns
    at = to_ns(activities_of(history)["occurred_at"])
    return int(at.min()) if at.size else BIG


def _weighted_weeks(t: np.ndarray, start: np.ndarray, half_life: pd.Timedelta) -> np.ndarray:
    """Weeks of exposure in ``[start, t)`` weighted like :meth:`PointInTime.decayed_count`."""
    hl = float(pd.Timedelta(half_life).value)
    span = np.maximum(t - start, 0).astype(np.float64)
    return hl / np.log(2.0) * -np.expm1(-np.log(2.0) * span / hl) / (7 * NS_PER_DAY)


def _engagement_features(
    history: History, ids: np.ndarray, t: np.ndarray, customer_since: np.ndarray
) -> dict[str, object]:
    """How engaged the customer is now against its own usual level, as weekly rates.

    A customer's engagement drifts; how often they get in touch outside any deal follows it.
    Exponentially weighted rates (half-lives of 4, 13 and 26 weeks) are divided by the
    equally weighted weeks the account was observable as a customer (since it became one, or
    since the first activity in the history, whichever is later), so a young account's rate
    is not diluted by weeks before it paid. ``customer_inbound_vs_usual`` compares the last
    quarter with the account's whole customer life: a fading customer falls below 1.
    """
    in_idx, out_idx, meet_idx, first_activity = cached(
        history, "accounts.customer_activities", lambda: _customer_activity_indexes(history)
    )
    start = np.where(customer_since == NAT, t, customer_since)
    # the exposure starts with the history's activity record (known before t by construction)
    start = np.maximum(start, np.where(first_activity < t, first_activity, t))
    q_in = in_idx.at(ids, t)
    out: dict[str, object] = {}
    for label, half_life in ENGAGEMENT_HALF_LIVES.items():
        weeks = _weighted_weeks(t, start, half_life)
        with np.errstate(divide="ignore", invalid="ignore"):
            out[f"customer_inbound_rate_{label}"] = np.where(
                weeks > 0, q_in.decayed_count(half_life) / weeks, np.nan
            )
    life_weeks = (t - start) / (7 * NS_PER_DAY)
    life_count = q_in.count() - in_idx.at(ids, start).count()
    with np.errstate(divide="ignore", invalid="ignore"):
        life = np.where(life_weeks > 0, life_count / life_weeks, np.nan)
    out["customer_inbound_rate_life"] = life
    # smoothed by half an event a quarter, so a quiet account's ratio is not 0/0
    prior = 0.5 / 13
    out["customer_inbound_vs_usual"] = (out["customer_inbound_rate_13w"] + prior) / (life + prior)
    weeks_13 = _weighted_weeks(t, start, ENGAGEMENT_HALF_LIVES["13w"])
    with np.errstate(divide="ignore", invalid="ignore"):
        out["customer_touch_rate_13w"] = np.where(
            weeks_13 > 0,
            out_idx.at(ids, t).decayed_count(ENGAGEMENT_HALF_LIVES["13w"]) / weeks_13,
            np.nan,
        )
    q_meet = meet_idx.at(ids, t)
    half_year = pd.Timedelta(days=180)
    missed = q_meet.sum("missed", half_year)
    out["customer_meetings_held_180d"] = q_meet.count(half_year) - missed
    out["customer_meetings_missed_180d"] = missed
    return out


def _owner_switches(history: History) -> EventIndex:
    """Outbound touches by a different rep than the account's previous one (owner changes);
    ``intro`` marks a good hand-over: the new rep's first touch is a held meeting."""
    acts = activities_of(history)
    out = is_in(acts["direction"], "outbound")
    account = activity_codes(history, "account_id", "account")[out]
    rep = activity_codes(history, "rep_id", "rep")[out]
    at = to_ns(acts["occurred_at"])[out]
    intro_all = is_in(acts["channel"], "meeting", "demo") & is_in(acts["outcome"], "held")
    order = np.lexsort((at, account))  # stable: ties keep the input order
    account, rep, at, intro = account[order], rep[order], at[order], intro_all[out][order]
    switch = np.zeros(order.size, dtype=bool)
    switch[1:] = (account[1:] == account[:-1]) & (rep[1:] != rep[:-1])
    return EventIndex(
        account[switch],
        at[switch].astype("datetime64[ns]"),
        {"intro": intro[switch].astype(np.int8)},
        n_keys=len(history.accounts),
    )


def _owner_features(
    history: History, owner: np.ndarray, ids: np.ndarray, t: np.ndarray
) -> dict[str, object]:
    hired_all, left_all = cached(
        history,
        "accounts.rep_times",
        lambda: (to_ns(history.reps["hired_at"]), to_ns(history.reps["left_at"])),
    )
    nat = np.iinfo(np.int64).min
    safe = np.where(owner >= 0, owner, 0)
    hired = np.where(owner >= 0, hired_all[safe], nat)
    left = np.where(owner >= 0, left_all[safe], nat)
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
        account = column_codes(history, "opportunities", "account_id", "account")
        amount = opps["amount"].to_numpy(dtype=np.float64)
        closed = opps["closed_at"].notna().to_numpy()
        won = (opps["status"] == "won").to_numpy().astype(np.int64)
        n = len(history.accounts)
        return (
            EventIndex(account, opps["created_at"].to_numpy(), {"amount": amount}, n_keys=n),
            EventIndex(
                account[closed],
                opps["closed_at"].to_numpy()[closed],
                {"amount": amount[closed], "won": won[closed]},
                n_keys=n,
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
