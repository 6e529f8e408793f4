"""Deal snapshots for the win-probability model: one row per opportunity open at ``as_of``.

:func:`deal_snapshot` takes one as_of or a whole grid of them (the grid is processed in one
vectorised pass, which is what makes two years of weekly snapshots fast); every value in a row
comes from events strictly before its ``as_of`` (see :mod:`salespilot.features.pit`).
:func:`add_deal_labels` adds the ``label_*`` columns from the future of each as_of.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from salespilot.features.custom_fields import add_custom_features
from salespilot.features.history import History
from salespilot.features.interactions import (
    CHANNEL_PLURALS,
    attach_reply_state,
    channel_direction_flags,
    empty_activities,
    hours_awaiting_reply,
    is_engaged,
    reply_delays,
)
from salespilot.features.pit import (
    EventIndex,
    as_of_index,
    cached,
    days_between,
    has_left_at,
    observed_end,
    rows_at,
    running_median,
    smoothed_rate,
    to_ns,
)

#: The usual funnel order; stages not listed do not count towards ``stages_skipped``.
DEFAULT_STAGE_ORDER: tuple[str, ...] = (
    "prospecting",
    "qualification",
    "discovery",
    "demo",
    "proposal",
    "negotiation",
    "commit",
)
WINDOWS_DAYS: tuple[int, ...] = (7, 30, 90)
#: Pseudo-counts pulling a rep's win rate towards the team's and the team's towards everyone's.
OWNER_PRIOR_DEALS = 10.0
TEAM_PRIOR_DEALS = 30.0

DEAL_CONTEXT_COLUMNS: tuple[str, ...] = (
    "opportunity_id",
    "as_of",
    "account_id",
    "owner_rep_id",
    "amount",
    "product_line",
    "stage",
    "expected_close_at",
    "team",
    "region",
)
DEAL_CATEGORICAL_FEATURES: tuple[str, ...] = ("stage", "product_line", "lead_source")
_ACTIVITY_COUNT_FEATURES = tuple(
    f"{plural}_{d}_{w}d"
    for plural in CHANNEL_PLURALS.values()
    for d in ("out", "in")
    for w in WINDOWS_DAYS
)
#: Model features of a deal snapshot (context-only columns excluded), in table order.
DEAL_FEATURES: tuple[str, ...] = (
    "deal_age_days",
    "amount",
    "product_line",
    "lead_source",
    "stage",
    "stage_index",
    "stage_moves",
    "days_in_stage",
    "stage_norm_days",
    "days_in_stage_vs_norm",
    "stages_skipped",
    *_ACTIVITY_COUNT_FEATURES,
    "activities_total",
    "days_since_last_touch",
    "days_since_last_inbound",
    "days_since_last_outbound",
    "hours_awaiting_reply",
    "median_reply_delay_h",
    "meetings_held",
    "meetings_postponed",
    "meetings_cancelled",
    "demos_held",
    "demos_postponed",
    "demos_cancelled",
    "postponements",
    "decision_maker_engaged",
    "contacts_engaged",
    "days_to_expected_close",
    "owner_tenure_days",
    "owner_deals_closed",
    "owner_win_rate_smoothed",
    "team_win_rate_smoothed",
    "reps_on_deal",
    "owner_changed",
    "owner_left",
    "account_prior_deals_won",
    "account_prior_deals_lost",
    "account_open_deals",
)


def deal_snapshot(
    history: History,
    as_of: pd.Timestamp | str | Iterable,
    *,
    stage_order: Sequence[str] = DEFAULT_STAGE_ORDER,
) -> pd.DataFrame:
    """Point-in-time features of every opportunity open at ``as_of`` (one date or a grid).

    A deal is open at t when it was created before t and not closed before t. Columns: the
    context in :data:`DEAL_CONTEXT_COLUMNS`, then :data:`DEAL_FEATURES`.
    """
    grid = as_of_index(as_of)
    opps = history.opportunities
    rows, t = rows_at(to_ns(opps["created_at"]), to_ns(opps["closed_at"]), grid)
    d = opps.iloc[rows].reset_index(drop=True)
    opp_ids = d["opportunity_id"].to_numpy()
    cols: dict[str, object] = {
        "opportunity_id": d["opportunity_id"],
        "as_of": pd.Series(t.astype("datetime64[ns]")),
        "account_id": d["account_id"],
        "owner_rep_id": d["owner_rep_id"],
        "amount": d["amount"].astype(np.float64),
        "product_line": d["product_line"],
        "lead_source": d["lead_source"],
        "expected_close_at": d["expected_close_at"],
        "deal_age_days": days_between(t, to_ns(d["created_at"])),
    }
    owner_at_t = _owner_at(history, opp_ids, t, d["owner_rep_id"].to_numpy())
    cols.update(_owner_features(history, owner_at_t, t))
    # context for serving and reporting: the team of the owner *now* (whose list it is on)
    reps_by_id = history.reps.set_index("rep_id")
    cols["team"] = reps_by_id["team"].reindex(d["owner_rep_id"]).reset_index(drop=True)
    cols["region"] = reps_by_id["region"].reindex(d["owner_rep_id"]).reset_index(drop=True)
    cols.update(_stage_features(history, opp_ids, t, to_ns(d["created_at"]), stage_order))
    cols.update(_activity_features(history, opp_ids, t))
    cols["median_reply_delay_h"] = _median_reply_delay(history, d["account_id"].to_numpy(), t)
    cols["days_to_expected_close"] = days_between(to_ns(d["expected_close_at"]), t)
    cols.update(_account_deal_history(history, d, t))
    out = pd.DataFrame(cols)
    for c in ("stage", "product_line", "lead_source"):
        out[c] = _as_category(out[c])
    out = out[
        list(DEAL_CONTEXT_COLUMNS) + [c for c in DEAL_FEATURES if c not in DEAL_CONTEXT_COLUMNS]
    ]
    # A customer's own fields declared as features (custom_fields.json): custom_<name> columns.
    return add_custom_features(out, history, "deals")


def add_deal_labels(snapshot: pd.DataFrame, history: History, horizon_days: int) -> pd.DataFrame:
    """Add ``label_won`` (won within ``horizon_days`` after as_of) and ``label_outcome_won``.

    ``label_won`` is 1 if the deal closed won in ``[as_of, as_of + horizon)``, 0 if it closed
    lost there or was still open at the horizon, and NaN where the horizon reaches past the
    history's observed end while the deal is still open (its future is unknown).
    ``label_outcome_won`` is the eventual outcome (1 won, 0 lost, NaN still open).
    """
    opps = history.opportunities.set_index("opportunity_id")
    closed = opps["closed_at"].reindex(snapshot["opportunity_id"]).to_numpy()
    status = opps["status"].reindex(snapshot["opportunity_id"]).to_numpy()
    t = snapshot["as_of"].to_numpy()
    horizon_end = t + np.timedelta64(int(horizon_days), "D")
    end = observed_end(history).to_datetime64()
    is_closed = ~pd.isna(closed)
    closed_in = is_closed & (closed < horizon_end)
    won = (status == "won") & closed_in
    known = closed_in | (horizon_end <= end)
    out = snapshot.copy()
    out["label_won"] = np.where(known, won.astype(np.float64), np.nan)
    out["label_outcome_won"] = np.where(
        status == "won", 1.0, np.where(status == "lost", 0.0, np.nan)
    )
    return out


# --------------------------------------------------------------------------------------------
# private steps
# --------------------------------------------------------------------------------------------
def _as_category(s: pd.Series) -> pd.Series:
    values = sorted(v for v in s.dropna().unique())
    return pd.Categorical(s.astype(object).where(s.notna(), None), categories=values)


def _owner_at(
    history: History, opp_ids: np.ndarray, t: np.ndarray, current_owner: np.ndarray
) -> np.ndarray:
    """Who worked the deal as of t: the rep of its latest outbound touch before t.

    ``opportunities.owner_rep_id`` is the owner *now*; using it for a past as_of would leak a
    later hand-over. Deals nobody has touched yet fall back to it (their owner since creation).
    """

    def build() -> EventIndex:
        acts = _activities(history)
        out = acts[acts["opportunity_id"].notna() & (acts["direction"] == "outbound")]
        return EventIndex(
            out["opportunity_id"], out["occurred_at"], {"rep": out["rep_id"].astype(object)}
        )

    last_rep = cached(history, "deals.owner_at", build).at(opp_ids, t).last("rep")
    return np.where(pd.isna(last_rep), current_owner, last_rep)


def _activities(history: History) -> pd.DataFrame:
    return history.activities if history.activities is not None else empty_activities()


def _owner_features(history: History, owner: np.ndarray, t: np.ndarray) -> dict[str, object]:
    """The owner-as-of-t's tenure, record (smoothed towards the team) and whether they left."""
    reps = history.reps
    pos = pd.Index(reps["rep_id"]).get_indexer(owner)
    found = pos >= 0
    safe = np.where(found, pos, 0)
    team = reps["team"].to_numpy()[safe]
    hired = to_ns(reps["hired_at"])[safe]
    left = to_ns(reps["left_at"])[safe]
    nat = np.iinfo(np.int64).min
    hired[~found] = nat
    left[~found] = nat
    team = pd.Series(team, dtype="str").where(found)

    # closed deals as events at their close time: the rep's, the team's and everyone's record
    def build() -> tuple[EventIndex, EventIndex, EventIndex]:
        opps = history.opportunities
        closed = opps[opps["closed_at"].notna() & opps["status"].isin(["won", "lost"])]
        won = (closed["status"] == "won").to_numpy().astype(np.int64)
        closed_team = reps.set_index("rep_id")["team"].reindex(closed["owner_rep_id"]).to_numpy()
        return (
            EventIndex(None, closed["closed_at"], {"won": won}),
            EventIndex(closed_team, closed["closed_at"], {"won": won}),
            EventIndex(closed["owner_rep_id"], closed["closed_at"], {"won": won}),
        )

    everyone_idx, team_idx, rep_idx = cached(history, "deals.closed_records", build)
    everyone = everyone_idx.at(None, t)
    g_rate = smoothed_rate(everyone.sum("won"), everyone.count(), 0.5, 2.0)
    by_team = team_idx.at(team.to_numpy(), t)
    team_rate = smoothed_rate(by_team.sum("won"), by_team.count(), g_rate, TEAM_PRIOR_DEALS)
    by_rep = rep_idx.at(owner, t)
    rep_closed = by_rep.count()
    return {
        "owner_tenure_days": days_between(t, hired),
        "owner_deals_closed": rep_closed,
        "owner_win_rate_smoothed": smoothed_rate(
            by_rep.sum("won"), rep_closed, team_rate, OWNER_PRIOR_DEALS
        ),
        "team_win_rate_smoothed": team_rate,
        "owner_left": has_left_at(left, t).astype(np.int8),
    }


def _stage_features(
    history: History,
    opp_ids: np.ndarray,
    t: np.ndarray,
    created_ns: np.ndarray,
    stage_order: Sequence[str],
) -> dict[str, object]:
    idx, spells = cached(
        history, ("deals.stages", tuple(stage_order)), lambda: _stage_indexes(history, stage_order)
    )
    q = idx.at(opp_ids, t)
    stage = q.last("stage")
    entered = q.last_time()
    entered = np.where(entered == np.iinfo(np.int64).min, created_ns, entered)
    days_in_stage = days_between(t, entered)
    norm = spells.at(stage, t).last("norm")
    stage_rank = q.last("rank")
    return {
        "stage": pd.Series(stage, dtype=object),
        "stage_index": np.where(stage_rank >= 0, stage_rank, np.nan),
        "stage_moves": q.count(),
        "days_in_stage": days_in_stage,
        "stage_norm_days": norm,
        "days_in_stage_vs_norm": days_in_stage / np.where(norm > 0, norm, np.nan),
        "stages_skipped": q.sum("skipped"),
    }


def _stage_indexes(history: History, stage_order: Sequence[str]) -> tuple[EventIndex, EventIndex]:
    """Stage changes by deal (with skips and ranks) and finished stage spells by stage (with
    the running median dwell, the stage's norm)."""
    sc = history.stage_changes
    if sc is None:
        sc = pd.DataFrame(
            {
                "opportunity_id": pd.Series([], dtype="str"),
                "changed_at": pd.Series([], dtype="datetime64[ns]"),
                "stage": pd.Series([], dtype="str"),
            }
        )
    rank_of = {s: i for i, s in enumerate(stage_order)}
    idx = EventIndex(sc["opportunity_id"], sc["changed_at"], {"stage": sc["stage"].astype(object)})
    stage_sorted = idx.value("stage")
    rank = np.array([rank_of.get(s, -2) for s in stage_sorted], dtype=np.int64)
    groups = idx.group_ids()
    first = np.ones(groups.size, dtype=bool)
    first[1:] = groups[1:] != groups[:-1]
    prev_rank = np.empty_like(rank)
    prev_rank[0:1] = -1
    prev_rank[1:] = rank[:-1]
    prev_rank[first] = -2  # a deal may start in any stage: only moves between stages skip
    skipped = np.where((rank >= 0) & (prev_rank >= 0), np.maximum(rank - prev_rank - 1, 0), 0)
    idx.add_values("skipped", skipped)
    idx.add_values("rank", rank)

    # stage spells: entered at a change, left at the next change or when the deal closed,
    # whichever came first (so a late-recorded change can never rewrite a finished spell)
    nat = np.iinfo(np.int64).min
    big = np.iinfo(np.int64).max
    last = np.ones(groups.size, dtype=bool)
    last[:-1] = groups[:-1] != groups[1:]
    next_change = np.full(idx.times.size, big, dtype=np.int64)
    next_change[:-1] = idx.times[1:]
    next_change[last] = big
    opps = history.opportunities
    closed_by_opp = pd.Series(to_ns(opps["closed_at"]), index=opps["opportunity_id"].to_numpy())
    opp_of_event = idx.uniques.to_numpy()[groups] if groups.size else np.array([], dtype=object)
    close = closed_by_opp.reindex(opp_of_event).fillna(nat).to_numpy(dtype=np.int64)
    close = np.where(close == nat, big, close)
    exit_ns = np.minimum(next_change, close)
    exit_ns[exit_ns == big] = nat
    dwell_days = (exit_ns - idx.times) / 86_400e9
    # a spell without an exit (still running) or ending before it began (bad data) has no dwell
    has_exit = (exit_ns != np.iinfo(np.int64).min) & (exit_ns >= idx.times)
    spells = EventIndex(stage_sorted[has_exit], exit_ns[has_exit].astype("datetime64[ns]"))
    spells.add_values(
        "dwell", dwell_days[has_exit][spells.order] if spells.size else np.empty(0), sorted_=True
    )
    spells.add_values("norm", running_median(spells.value("dwell"), spells.group_ids()))

    return idx, spells


def _deal_activity_indexes(history: History) -> tuple[EventIndex, EventIndex, EventIndex]:
    """Deal activities with per-channel/direction flags and reply state; first engagement of
    each (deal, contact); first outbound touch of each (deal, rep)."""
    acts = _activities(history)
    contacts = history.contacts
    a = acts[acts["opportunity_id"].notna()]
    values: dict[str, np.ndarray] = dict(channel_direction_flags(a))
    outcome = a["outcome"].to_numpy()
    channel = a["channel"].to_numpy()
    for ch in ("meeting", "demo"):
        for oc in ("held", "postponed", "cancelled"):
            values[f"{CHANNEL_PLURALS[ch]}_{oc}"] = ((channel == ch) & (outcome == oc)).astype(
                np.int32
            )
    values["inbound"] = (a["direction"].to_numpy() == "inbound").astype(np.int8)
    main = EventIndex(a["opportunity_id"], a["occurred_at"], values)
    attach_reply_state(main)

    # distinct contacts (and reps) = number of "first time" events before t
    engaged = a[is_engaged(a) & a["contact_id"].notna()]
    engaged = engaged.sort_values("occurred_at", kind="stable").drop_duplicates(
        ["opportunity_id", "contact_id"]
    )
    role = (
        contacts.set_index("contact_id")["role"].reindex(engaged["contact_id"]).to_numpy()
        if contacts is not None
        else np.full(len(engaged), None)
    )
    first_engaged = EventIndex(
        engaged["opportunity_id"],
        engaged["occurred_at"],
        {"dm": (role == "decision_maker").astype(np.int32)},
    )
    touching = a[a["direction"] == "outbound"].sort_values("occurred_at", kind="stable")
    touching = touching.drop_duplicates(["opportunity_id", "rep_id"])
    first_touch = EventIndex(touching["opportunity_id"], touching["occurred_at"])
    return main, first_engaged, first_touch


def _activity_features(history: History, opp_ids: np.ndarray, t: np.ndarray) -> dict[str, object]:
    main, engaged_idx, touch_idx = cached(
        history, "deals.activities", lambda: _deal_activity_indexes(history)
    )
    q = main.at(opp_ids, t)
    out: dict[str, object] = {}
    flag_names = [f"{p}_{d}" for p in CHANNEL_PLURALS.values() for d in ("out", "in")]
    for w in WINDOWS_DAYS:
        window = pd.Timedelta(days=w)
        for name in flag_names:
            out[f"{name}_{w}d"] = q.sum(name, window)
    out["activities_total"] = q.count()
    out["days_since_last_touch"] = q.days_since_last()
    out["days_since_last_inbound"] = days_between(t, q.last_ns("last_in"))
    out["days_since_last_outbound"] = days_between(t, q.last_ns("last_out"))
    out["hours_awaiting_reply"] = hours_awaiting_reply(q)
    for ch in ("meetings", "demos"):
        for oc in ("held", "postponed", "cancelled"):
            out[f"{ch}_{oc}"] = q.sum(f"{ch}_{oc}")
    out["postponements"] = out["meetings_postponed"] + out["demos_postponed"]
    first_engaged = engaged_idx.at(opp_ids, t)
    out["decision_maker_engaged"] = (first_engaged.sum("dm") > 0).astype(np.int8)
    out["contacts_engaged"] = first_engaged.count()
    out["reps_on_deal"] = touch_idx.at(opp_ids, t).count()
    out["owner_changed"] = (out["reps_on_deal"] > 1).astype(np.int8)
    return out


def _median_reply_delay(history: History, account_ids: np.ndarray, t: np.ndarray) -> np.ndarray:
    def build() -> EventIndex:
        r = reply_delays(_activities(history), "account_id")
        idx = EventIndex(r["account_id"], r["occurred_at"], {"delay_h": r["delay_h"].to_numpy()})
        idx.add_values("median", running_median(idx.value("delay_h"), idx.group_ids()))
        return idx

    return cached(history, "deals.reply_delay", build).at(account_ids, t).last("median")


def _account_deal_history(history: History, d: pd.DataFrame, t: np.ndarray) -> dict[str, object]:
    def build() -> EventIndex:
        opps = history.opportunities
        closed = opps[opps["closed_at"].notna()]
        won = (closed["status"] == "won").to_numpy().astype(np.int64)
        return EventIndex(closed["account_id"], closed["closed_at"], {"won": won})

    q = cached(history, "deals.account_closed", build).at(d["account_id"].to_numpy(), t)
    n_won = q.sum("won")
    # other deals of the same account open at the same as_of (all open deals are rows here)
    open_same = (
        pd.DataFrame({"a": d["account_id"].to_numpy(), "t": t})
        .groupby(["a", "t"])["a"]
        .transform("size")
    )
    return {
        "account_prior_deals_won": n_won,
        "account_prior_deals_lost": q.count() - n_won,
        "account_open_deals": open_same.to_numpy() - 1,
    }
