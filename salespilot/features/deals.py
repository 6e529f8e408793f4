"""Deal snapshots for the win-probability model: one row per opportunity open at ``as_of``.

:func:`deal_snapshot` takes one as_of or a whole grid of them (the grid is processed in one
vectorised pass, which is what makes two years of weekly snapshots fast); every value in a row
comes from events strictly before its ``as_of`` (see :mod:`salespilot.features.pit`).
:func:`add_deal_labels` adds the ``label_*`` columns from the future of each as_of.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from salespilot.features.custom_fields import add_custom_features
from salespilot.features.history import History
from salespilot.features.interactions import (
    CHANNEL_PLURALS,
    activities_of,
    activity_codes,
    attach_reply_state,
    channel_direction_flags,
    hours_awaiting_reply,
    is_engaged,
    is_in,
    reply_delays,
)
from salespilot.features.pit import (
    EventIndex,
    PointInTime,
    as_of_index,
    cached,
    category_column,
    column_codes,
    days_between,
    decided_at_once,
    has_left_at,
    observed_end,
    rows_at,
    running_median,
    smoothed_rate,
    take_column,
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
#: The horizon of ``owner_won_in_horizon_rate`` when the caller gives none: the win model's
#: default label horizon (a model trained with another horizon passes its own).
DEFAULT_HORIZON_DAYS = 60

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
    "owner_won_in_horizon_rate",
    "team_win_rate_smoothed",
    "reps_on_deal",
    "owner_changed",
    "owner_left",
    "account_prior_deals_won",
    "account_prior_deals_lost",
    "account_open_deals",
    "outbound_per_day",
    "inbound_per_day",
    "call_connect_rate",
    "decision_maker_touched",
    "meetings_missed_30d",
    "days_since_meeting_held",
    "outbound_7d_vs_usual",
    "outbound_14d_vs_usual",
    "inbound_14d_vs_usual",
    "meetings_scheduled_30d",
    "team_stage_norm_days",
    "days_in_stage_vs_team_norm",
    "pace_vs_team",
)


def deal_snapshot(
    history: History,
    as_of: pd.Timestamp | str | Iterable,
    *,
    stage_order: Sequence[str] = DEFAULT_STAGE_ORDER,
    opportunity_ids: Iterable[str] | None = None,
    horizon_days: int = DEFAULT_HORIZON_DAYS,
    account_ids: Iterable[str] | None = None,
) -> pd.DataFrame:
    """Point-in-time features of every opportunity open at ``as_of`` (one date or a grid).

    A deal is open at t when it was created before t and not closed before t. Columns: the
    context in :data:`DEAL_CONTEXT_COLUMNS`, then :data:`DEAL_FEATURES`. ``opportunity_ids``
    limits the rows to those deals (one rep's list), ``account_ids`` to the deals of those
    accounts, before any feature is computed; the features still read the whole history
    (team records, stage norms), so each row is the same as in the full snapshot.
    ``horizon_days`` is the label horizon of the model the rows are for
    (``owner_won_in_horizon_rate`` counts wins within it).
    """
    opps = history.opportunities
    rows, t = open_deal_rows(history, as_of)
    if opportunity_ids is not None:
        wanted = opps["opportunity_id"].to_numpy(dtype=object)[rows]
        keep = pd.Index(list(opportunity_ids), dtype=object).get_indexer(wanted) >= 0
        rows, t = rows[keep], t[keep]
    if account_ids is not None:
        allowed = history.accounts["account_id"].isin(list(account_ids)).to_numpy()
        account = column_codes(history, "opportunities", "account_id", "account")[rows]
        keep = np.where(account >= 0, allowed[np.where(account >= 0, account, 0)], False)
        rows, t = rows[keep], t[keep]
    return _deal_rows(history, rows, t, stage_order, horizon_days)


def open_deal_rows(
    history: History, as_of: pd.Timestamp | str | Iterable
) -> tuple[np.ndarray, np.ndarray]:
    """(opportunity row, as_of ns) of every deal open at each ``as_of``: the rows of
    :func:`deal_snapshot`, without their features."""
    created_all, closed_all = _deal_times(history)
    return rows_at(created_all, closed_all, as_of_index(as_of))


def deal_decision_snapshot(
    history: History,
    *,
    at: str = "created_at",
    stage_order: Sequence[str] = DEFAULT_STAGE_ORDER,
    horizon_days: int = DEFAULT_HORIZON_DAYS,
) -> pd.DataFrame:
    """One row per deal, as of its own decision time (``as_of`` = the deal's ``at`` column:
    a lead at its creation), instead of one per deal and weekly snapshot.

    The same features as :func:`deal_snapshot`, from what was recorded before that instant,
    so a lead decided the day it came in still has its row.
    """
    opps = history.opportunities
    if at not in opps.columns:
        raise ValueError(f"decision time {at!r} is not a column of opportunities")
    when = pd.to_datetime(opps[at]).to_numpy("datetime64[ns]")
    rows = np.flatnonzero(~pd.isna(when))
    t = when[rows].astype(np.int64)
    return _deal_rows(history, rows, t, stage_order, horizon_days)


def deal_rows_as_trained(
    history: History,
    deal_rows: pd.DataFrame,
    model: object | None,
    *,
    stage_order: Sequence[str] = DEFAULT_STAGE_ORDER,
    horizon_days: int = DEFAULT_HORIZON_DAYS,
) -> pd.DataFrame:
    """The rows a win model scores for the deals of ``deal_rows`` (a :func:`deal_snapshot`),
    row-aligned with them: ``deal_rows`` themselves for a model trained on the weekly grid;
    for one trained on decision-time rows (its metadata ``rows: decision``, e.g. a lead scored
    at its creation, where every training row had deal age 0), each deal as of its own
    decision time (``decision_at``, default its ``created_at``) - features of the instant the
    model was trained to judge, so its score keeps its meaning ("won within the horizon of
    that instant") instead of being fed features it never saw (a deal months old).
    """
    metadata = getattr(model, "metadata", None) or {}
    if metadata.get("rows") != "decision" or deal_rows.empty:
        return deal_rows
    at = metadata.get("decision_at") or "created_at"
    opps = history.opportunities
    rows = _opportunity_codes(history, deal_rows["opportunity_id"])
    when = pd.to_datetime(opps[at]).to_numpy("datetime64[ns]")[rows]
    # a deal without its decision time (none recorded) keeps the row of now
    now = deal_rows["as_of"].to_numpy("datetime64[ns]")
    t = np.where(pd.isna(when), now, when).astype(np.int64)
    return _deal_rows(history, rows, t, stage_order, horizon_days)


def _deal_rows(
    history: History,
    rows: np.ndarray,
    t: np.ndarray,
    stage_order: Sequence[str],
    horizon_days: int = DEFAULT_HORIZON_DAYS,
) -> pd.DataFrame:
    """The feature rows of deals ``rows`` (opportunity row numbers), each as of ``t`` (ns)."""
    opps = history.opportunities
    created_all = _deal_times(history)[0]
    account = column_codes(history, "opportunities", "account_id", "account")[rows]
    owner_now = column_codes(history, "opportunities", "owner_rep_id", "rep")[rows]
    expected_close = _expected_close(history)[rows]
    cols: dict[str, object] = {
        "opportunity_id": take_column(history, "opportunities", "opportunity_id", rows),
        "as_of": pd.Series(t.astype("datetime64[ns]")),
        "account_id": take_column(history, "opportunities", "account_id", rows),
        "owner_rep_id": take_column(history, "opportunities", "owner_rep_id", rows),
        "amount": opps["amount"].to_numpy(dtype=np.float64)[rows],
        "product_line": category_column(history, "opportunities", "product_line", rows),
        "lead_source": category_column(history, "opportunities", "lead_source", rows),
        "expected_close_at": expected_close.astype("datetime64[ns]"),
        "deal_age_days": days_between(t, created_all[rows]),
    }
    owner_at_t = _owner_at(history, rows, t, owner_now)
    cols.update(_owner_features(history, owner_at_t, t))
    cols["owner_won_in_horizon_rate"] = _owner_won_in_horizon_rate(
        history, owner_at_t, t, horizon_days
    )
    # context for serving and reporting: the team of the owner *now* (whose list it is on)
    cols["team"] = take_column(history, "reps", "team", owner_now)
    cols["region"] = take_column(history, "reps", "region", owner_now)
    cols.update(_stage_features(history, rows, t, stage_order))
    cols.update(_activity_features(history, rows, t))
    cols.update(_signal_features(history, rows, t, cols["deal_age_days"]))
    cols["median_reply_delay_h"] = _median_reply_delay(history, account, t)
    cols["days_to_expected_close"] = days_between(expected_close, t)
    cols.update(_account_deal_history(history, account, t))
    out = pd.DataFrame(cols)
    # counts as int32: a two-year grid of a big CRM is millions of rows
    counts = out.select_dtypes("int64").columns
    out[counts] = out[counts].astype(np.int32)
    out = out[
        list(DEAL_CONTEXT_COLUMNS) + [c for c in DEAL_FEATURES if c not in DEAL_CONTEXT_COLUMNS]
    ]
    # A customer's own fields declared as features (custom_fields.json): custom_<name> columns.
    return add_custom_features(out, history, "deals")


def add_deal_labels(snapshot: pd.DataFrame, history: History, horizon_days: int) -> pd.DataFrame:
    """Add ``label_won`` (won within ``horizon_days`` after as_of), ``label_closed`` and
    ``label_outcome_won``.

    ``label_won`` is 1 if the deal closed won in ``[as_of, as_of + horizon)``, 0 if it closed
    lost there or was still open at the horizon, and NaN where the horizon reaches past the
    history's observed end (the outcome within the horizon is not fully observed).
    ``label_closed`` is 1 if the deal closed (won or lost) within the horizon, 0 if it was
    still open at its end (NaN where ``label_won`` is): among its 1s, ``label_won`` tells won
    from lost, apart from when deals close.
    ``label_outcome_won`` is the eventual outcome (1 won, 0 lost, NaN still open).
    """
    rows = _opportunity_codes(history, snapshot["opportunity_id"])
    closed = _deal_times(history)[1][rows].astype("datetime64[ns]")
    status = history.opportunities["status"].to_numpy(dtype=object)[rows]
    t = snapshot["as_of"].to_numpy()
    horizon_end = t + np.timedelta64(int(horizon_days), "D")
    end = observed_end(history).to_datetime64()
    is_closed = ~pd.isna(closed)
    closed_in = is_closed & (closed < horizon_end)
    won = (status == "won") & closed_in
    # Known only where the whole horizon has been observed: keeping the deals that happened to
    # close early in a horizon running past the end would bias the latest rows towards fast
    # closers. Unless every deal was decided at its own decision time (a call list).
    known = (horizon_end <= end) | decided_at_once(t, closed)
    out = snapshot.copy(deep=False)
    out["label_won"] = np.where(known, won.astype(np.float64), np.nan)
    out["label_outcome_won"] = np.where(
        status == "won", 1.0, np.where(status == "lost", 0.0, np.nan)
    )
    decided = closed_in & np.isin(status, ["won", "lost"])
    out["label_closed"] = np.where(known, decided.astype(np.float64), np.nan)
    return out


# --------------------------------------------------------------------------------------------
# private steps
# --------------------------------------------------------------------------------------------
def _opportunity_codes(history: History, ids: pd.Series) -> np.ndarray:
    import pyarrow as pa
    import pyarrow.compute as pc

    found = pc.index_in(
        pa.array(ids).cast(pa.string()),
        value_set=pa.array(history.opportunities["opportunity_id"]).cast(pa.string()),
    )
    codes = pc.fill_null(found, -1).to_numpy(zero_copy_only=False).astype(np.int64)
    if (codes < 0).any():
        raise ValueError("the snapshot holds opportunities this history does not have")
    return codes


def _take(values: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """``values[codes]`` with None where the code is -1 (unknown id)."""
    out = (
        values[np.where(codes >= 0, codes, 0)].astype(object)
        if values.size
        else np.full(codes.size, None, dtype=object)
    )
    out[codes < 0] = None
    return out


def _deal_times(history: History) -> tuple[np.ndarray, np.ndarray]:
    opps = history.opportunities
    return cached(
        history,
        "deals.times",
        lambda: (to_ns(opps["created_at"]), to_ns(opps["closed_at"])),
    )


def _expected_close(history: History) -> np.ndarray:
    return cached(
        history, "deals.expected_close", lambda: to_ns(history.opportunities["expected_close_at"])
    )


def _owner_at(
    history: History, rows: np.ndarray, t: np.ndarray, current_owner: np.ndarray
) -> np.ndarray:
    """Who worked the deal as of t (rep code): the rep of its latest outbound touch before t.

    ``opportunities.owner_rep_id`` is the owner *now*; using it for a past as_of would leak a
    later hand-over. Deals nobody has touched yet fall back to it (their owner since creation).
    """

    def build() -> EventIndex:
        acts = activities_of(history)
        outbound = is_in(acts["direction"], "outbound")
        opp = activity_codes(history, "opportunity_id", "opportunity")
        rep = activity_codes(history, "rep_id", "rep")
        keep = outbound & (opp >= 0)
        return EventIndex(
            opp[keep],
            acts["occurred_at"].to_numpy()[keep],
            {"rep": rep[keep]},
            n_keys=len(history.opportunities),
        )

    last_rep = cached(history, "deals.owner_at", build).at(rows, t).last("rep")
    return np.where(np.isnan(last_rep), current_owner, last_rep).astype(np.int64)


def _owner_features(history: History, owner: np.ndarray, t: np.ndarray) -> dict[str, object]:
    """The owner-as-of-t's tenure, record (smoothed towards the team) and whether they left."""
    reps = history.reps
    hired_all, left_all, team_code = cached(
        history,
        "deals.rep_arrays",
        lambda: (
            to_ns(reps["hired_at"]),
            to_ns(reps["left_at"]),
            pd.factorize(reps["team"].to_numpy(dtype=object))[0].astype(np.int64),
        ),
    )
    nat = np.iinfo(np.int64).min
    found = owner >= 0
    safe = np.where(found, owner, 0)
    hired = np.where(found, hired_all[safe], nat) if hired_all.size else np.full(owner.size, nat)
    left = np.where(found, left_all[safe], nat) if left_all.size else np.full(owner.size, nat)
    team = np.where(found, team_code[safe], -1) if team_code.size else np.full(owner.size, -1)

    # closed deals as events at their close time: the rep's, the team's and everyone's record
    def build() -> tuple[EventIndex, EventIndex, EventIndex]:
        opps = history.opportunities
        closed = (opps["closed_at"].notna() & opps["status"].isin(["won", "lost"])).to_numpy()
        won = (opps["status"] == "won").to_numpy().astype(np.int64)[closed]
        rep = column_codes(history, "opportunities", "owner_rep_id", "rep")[closed]
        at = opps["closed_at"].to_numpy()[closed]
        rep_team = np.where(rep >= 0, team_code[np.where(rep >= 0, rep, 0)], -1)
        n_teams = int(team_code.max()) + 1 if team_code.size else 0
        return (
            EventIndex(None, at, {"won": won}),
            EventIndex(rep_team, at, {"won": won}, n_keys=n_teams),
            EventIndex(rep, at, {"won": won}, n_keys=len(reps)),
        )

    everyone_idx, team_idx, rep_idx = cached(history, "deals.closed_records", build)
    everyone = everyone_idx.at(None, t)
    g_rate = smoothed_rate(everyone.sum("won"), everyone.count(), 0.5, 2.0)
    by_team = team_idx.at(team, t)
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


def _owner_won_in_horizon_rate(
    history: History, owner: np.ndarray, t: np.ndarray, horizon_days: int
) -> np.ndarray:
    """The owner's share of earlier deals won within ``horizon_days`` of their creation - the
    label's own question - smoothed towards everyone's share (``OWNER_PRIOR_DEALS``).

    A deal's answer is known at its close when it closed within the horizon, else at the end of
    its horizon (still open then: not won in time); only answers known before t count, so a
    deal still inside its horizon at t is left out whatever its outcome turns out to be.
    """

    def build() -> tuple[EventIndex, EventIndex]:
        created, closed = _deal_times(history)
        opps = history.opportunities
        nat = np.iinfo(np.int64).min
        horizon_end = np.where(created != nat, created + int(horizon_days) * 86_400 * 10**9, nat)
        decided_in = (closed != nat) & (closed < horizon_end) & (created != nat)
        decided_in &= opps["status"].isin(["won", "lost"]).to_numpy()
        won = (decided_in & (opps["status"] == "won").to_numpy()).astype(np.int64)
        known_at = np.where(decided_in, closed, horizon_end).astype("datetime64[ns]")
        rep = column_codes(history, "opportunities", "owner_rep_id", "rep")
        return (
            EventIndex(None, known_at, {"won": won}),
            EventIndex(rep, known_at, {"won": won}, n_keys=len(history.reps)),
        )

    everyone_idx, rep_idx = cached(history, ("deals.won_in_horizon", int(horizon_days)), build)
    everyone = everyone_idx.at(None, t)
    overall = smoothed_rate(everyone.sum("won"), everyone.count(), 0.5, 2.0)
    by_rep = rep_idx.at(owner, t)
    return smoothed_rate(by_rep.sum("won"), by_rep.count(), overall, OWNER_PRIOR_DEALS)


@dataclass(frozen=True)
class StageState:
    """Where each (deal row, as_of) stands in its stages, from what is known before as_of.

    ``stage`` the last stage entered (missing before any change), ``entered_ns`` when (the
    deal's creation before any change), ``days_in_stage`` since then, ``norm_days`` the
    stage's norm: the median of the finished stays in that stage known before as_of (a stay
    ends at the next change or at the deal's close). The deal features and the warning rules
    (:mod:`salespilot.serving.rules`) both read these.
    """

    stage: pd.Categorical
    code: np.ndarray
    entered_ns: np.ndarray
    days_in_stage: np.ndarray
    norm_days: np.ndarray
    changes: PointInTime


def stage_state(
    history: History,
    rows: np.ndarray,
    t: np.ndarray,
    stage_order: Sequence[str] = DEFAULT_STAGE_ORDER,
) -> StageState:
    """The :class:`StageState` of opportunity rows ``rows`` at ``t`` (int64 ns, one each)."""
    idx, spells, stage_names = cached(
        history, ("deals.stages", tuple(stage_order)), lambda: _stage_indexes(history, stage_order)
    )
    q = idx.at(rows, t)
    stage_code = q.last("stage")
    has_stage = ~np.isnan(stage_code)
    code = np.where(has_stage, stage_code, -1).astype(np.int64)
    entered = q.last_time()
    entered = np.where(entered == np.iinfo(np.int64).min, _deal_times(history)[0][rows], entered)
    return StageState(
        stage=pd.Categorical.from_codes(code, categories=list(stage_names)),
        code=code,
        entered_ns=entered,
        days_in_stage=days_between(t, entered),
        norm_days=spells.at(code, t).last("norm"),
        changes=q,
    )


def _stage_features(
    history: History,
    rows: np.ndarray,
    t: np.ndarray,
    stage_order: Sequence[str],
) -> dict[str, object]:
    st = stage_state(history, rows, t, stage_order)
    q, norm, days_in_stage = st.changes, st.norm_days, st.days_in_stage
    stage_rank = q.last("rank")
    return {
        "stage": st.stage,
        "stage_index": np.where(stage_rank >= 0, stage_rank, np.nan),
        "stage_moves": q.count(),
        "days_in_stage": days_in_stage,
        "stage_norm_days": norm,
        "days_in_stage_vs_norm": days_in_stage / np.where(norm > 0, norm, np.nan),
        "stages_skipped": q.sum("skipped"),
        **_pace_features(history, rows, t, st.code, days_in_stage, stage_order),
    }


def _stage_indexes(
    history: History, stage_order: Sequence[str]
) -> tuple[EventIndex, EventIndex, np.ndarray]:
    """Stage changes by deal (with skips and ranks) and finished stage spells by stage (with
    the running median dwell, the stage's norm); plus the stage names by code."""
    sc = history.stage_changes
    n_opps = len(history.opportunities)
    if sc is None or sc.empty:
        opp = np.empty(0, dtype=np.int64)
        at = np.empty(0, dtype="datetime64[ns]")
        stage_codes, names = np.empty(0, dtype=np.int64), np.empty(0, dtype=object)
    else:
        opp = column_codes(history, "stage_changes", "opportunity_id", "opportunity")
        at = sc["changed_at"].to_numpy()
        stage_codes, names = pd.factorize(sc["stage"].to_numpy(dtype=object))
        stage_codes = stage_codes.astype(np.int64)
        names = np.asarray(names, dtype=object)
    rank_of_code = np.array([{s: i for i, s in enumerate(stage_order)}.get(n, -2) for n in names])
    idx = EventIndex(opp, at, {"stage": stage_codes}, n_keys=n_opps)
    code_sorted = idx.value("stage")
    rank = rank_of_code[code_sorted] if code_sorted.size else np.empty(0, dtype=np.int64)
    groups = idx.group_ids()
    first = np.ones(groups.size, dtype=bool)
    first[1:] = groups[1:] != groups[:-1]
    prev_rank = np.empty_like(rank)
    prev_rank[1:] = rank[:-1]
    prev_rank[first] = -2  # a deal may start in any stage: only moves between stages skip
    skipped = np.where((rank >= 0) & (prev_rank >= 0), np.maximum(rank - prev_rank - 1, 0), 0)
    idx.add_values("skipped", skipped)
    idx.add_values("rank", rank)

    exit_ns, has_exit, dwell_days = _spell_exits(history, idx)
    spells = EventIndex(
        code_sorted[has_exit],
        exit_ns[has_exit].astype("datetime64[ns]"),
        {"dwell": dwell_days[has_exit]},
        n_keys=len(names),
    )
    spells.add_values("norm", running_median(spells.value("dwell"), spells.group_ids()))
    return idx, spells, names


def _spell_exits(history: History, idx: EventIndex) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(exit ns, has an exit, dwell days) of each stage spell of the stage-change index.

    A spell is entered at a change and left at the next change or when the deal closed,
    whichever came first (so a late-recorded change can never rewrite a finished spell); one
    without an exit (still running) or ending before it began (bad data) has no dwell.
    """
    groups = idx.group_ids()
    nat = np.iinfo(np.int64).min
    big = np.iinfo(np.int64).max
    last = np.ones(groups.size, dtype=bool)
    last[:-1] = groups[:-1] != groups[1:]
    next_change = np.full(idx.times.size, big, dtype=np.int64)
    next_change[:-1] = idx.times[1:]
    next_change[last] = big
    close = _deal_times(history)[1][groups] if groups.size else np.empty(0, dtype=np.int64)
    close = np.where(close == nat, big, close)
    exit_ns = np.minimum(next_change, close)
    has_exit = (exit_ns != big) & (exit_ns >= idx.times)
    return exit_ns, has_exit, (exit_ns - idx.times) / 86_400e9


def _deal_activity_indexes(history: History) -> tuple[EventIndex, EventIndex, EventIndex]:
    """Deal activities with per-channel/direction flags and reply state; first engagement of
    each (deal, contact); first outbound touch of each (deal, rep)."""
    acts = activities_of(history)
    n_opps = len(history.opportunities)
    opp_all = activity_codes(history, "opportunity_id", "opportunity")
    on_deal = opp_all >= 0
    a = acts[["occurred_at", "channel", "direction", "outcome"]][on_deal]
    opp = opp_all[on_deal]
    at = a["occurred_at"].to_numpy()
    values: dict[str, np.ndarray] = dict(channel_direction_flags(a))
    for ch in ("meeting", "demo"):
        is_ch = is_in(a["channel"], ch)
        for oc in ("held", "postponed", "cancelled"):
            values[f"{CHANNEL_PLURALS[ch]}_{oc}"] = (is_ch & is_in(a["outcome"], oc)).astype(
                np.int32
            )
    # the 0/1 flags travel into the index's (deal, time) order as the bits of one column: one
    # gather of millions of events instead of one per flag
    flags = list(values)
    if len(flags) > 32:
        raise ValueError(f"{len(flags)} activity flags do not fit the 32 bits of one column")
    bits = np.zeros(len(a), dtype=np.uint32)
    for j, name in enumerate(flags):
        bits |= values[name].astype(np.uint32) << np.uint32(j)
    inbound = is_in(a["direction"], "inbound")
    main = EventIndex(opp, at, {"flags": bits, "inbound": inbound.astype(np.int8)}, n_keys=n_opps)
    sorted_bits = main.value("flags")
    for j, name in enumerate(flags):
        main.add_values(name, ((sorted_bits >> np.uint32(j)) & np.uint32(1)).astype(np.int32))
    attach_reply_state(main)
    main.freeze_sums(flags)

    # distinct contacts (and reps) = number of "first time" events before t
    contact = activity_codes(history, "contact_id", "contact")[on_deal]
    engaged = is_engaged(a) & (contact >= 0)
    first_engaged = _first_occurrences(opp[engaged], contact[engaged], at[engaged])
    roles = (
        history.contacts["role"].to_numpy(dtype=object)
        if history.contacts is not None
        else np.empty(0, dtype=object)
    )
    dm = (_take(roles, contact[engaged][first_engaged]) == "decision_maker").astype(np.int32)
    engaged_idx = EventIndex(
        opp[engaged][first_engaged], at[engaged][first_engaged], {"dm": dm}, n_keys=n_opps
    )
    rep = activity_codes(history, "rep_id", "rep")[on_deal]
    out = ~inbound
    first_touch = _first_occurrences(opp[out], rep[out], at[out])
    touch_idx = EventIndex(opp[out][first_touch], at[out][first_touch], n_keys=n_opps)
    return main, engaged_idx, touch_idx


def _first_occurrences(key: np.ndarray, other: np.ndarray, at: np.ndarray) -> np.ndarray:
    """Positions of the first event (by time, then input order) of each (key, other) pair."""
    if key.size == 0:
        return np.empty(0, dtype=np.int64)
    low = int(other.min())  # -1: no code; shifted so every pair packs apart
    span = int(other.max()) - low + 1
    if int(key.min()) >= 0 and int(key.max()) < np.iinfo(np.int64).max // span - 1:
        # (key, other) packed into one int64: two stable argsorts beat a three-key lexsort
        by_time = np.argsort(at, kind="stable")
        pair = key[by_time].astype(np.int64) * span + (other[by_time] - low)
        order = by_time[np.argsort(pair, kind="stable")]
    else:
        order = np.lexsort((at, other, key))
    k, o = key[order], other[order]
    first = np.ones(order.size, dtype=bool)
    first[1:] = (k[1:] != k[:-1]) | (o[1:] != o[:-1])
    return np.sort(order[first])


def _activity_features(history: History, rows: np.ndarray, t: np.ndarray) -> dict[str, object]:
    main, engaged_idx, touch_idx = cached(
        history, "deals.activities", lambda: _deal_activity_indexes(history)
    )
    q = main.at(rows, t)
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
    first_engaged = engaged_idx.at(rows, t)
    out["decision_maker_engaged"] = (first_engaged.sum("dm") > 0).astype(np.int8)
    out["contacts_engaged"] = first_engaged.count()
    out["reps_on_deal"] = touch_idx.at(rows, t).count()
    out["owner_changed"] = (out["reps_on_deal"] > 1).astype(np.int8)
    return out


def _median_reply_delay(history: History, account: np.ndarray, t: np.ndarray) -> np.ndarray:
    def build() -> EventIndex:
        acts = activities_of(history)
        codes = activity_codes(history, "account_id", "account")
        r = reply_delays(acts.assign(account_code=codes), "account_code")
        idx = EventIndex(
            r["account_code"].to_numpy(),
            r["occurred_at"],
            {"delay_h": r["delay_h"].to_numpy()},
            n_keys=len(history.accounts),
        )
        idx.add_values("median", running_median(idx.value("delay_h"), idx.group_ids()))
        return idx

    return cached(history, "deals.reply_delay", build).at(account, t).last("median")


def _account_deal_history(
    history: History, account: np.ndarray, t: np.ndarray
) -> dict[str, object]:
    def build() -> EventIndex:
        opps = history.opportunities
        closed = opps["closed_at"].notna().to_numpy()
        won = (opps["status"] == "won").to_numpy().astype(np.int64)[closed]
        codes = column_codes(history, "opportunities", "account_id", "account")[closed]
        return EventIndex(
            codes, opps["closed_at"].to_numpy()[closed], {"won": won}, n_keys=len(history.accounts)
        )

    q = cached(history, "deals.account_closed", build).at(account, t)
    n_won = q.sum("won")
    # other deals of the same account open at the same as_of (all open deals are rows here)
    open_same = (
        pd.DataFrame({"a": account, "t": t}).groupby(["a", "t"])["a"].transform("size").to_numpy()
    )
    return {
        "account_prior_deals_won": n_won,
        "account_prior_deals_lost": q.count() - n_won,
        "account_open_deals": open_same - 1,
    }


# --------------------------------------------------------------------------------------------
# signals of a deal's hidden quality, pace and health (see docs/win_probability.md)
# --------------------------------------------------------------------------------------------
#: Pseudo-calls pulling a deal's connect rate towards everyone's.
CONNECT_PRIOR_CALLS = 5.0
#: Look-back windows of the "going quiet" features.
RECENT_WINDOWS_DAYS: tuple[int, ...] = (7, 14)


def _signal_index(history: History) -> tuple[EventIndex, EventIndex]:
    """Deal activities with the values the signal features sum; held meetings."""
    acts = activities_of(history)
    opp_all = activity_codes(history, "opportunity_id", "opportunity")
    on_deal = opp_all >= 0
    a = acts[on_deal]
    opp = opp_all[on_deal]
    at = a["occurred_at"].to_numpy()
    outbound = is_in(a["direction"], "outbound")
    inbound = is_in(a["direction"], "inbound")
    call_out = is_in(a["channel"], "call") & outbound
    connected = call_out & is_in(a["outcome"], "connected")
    meeting = is_in(a["channel"], "meeting", "demo")
    missed = meeting & is_in(a["outcome"], "postponed", "cancelled")
    contact = activity_codes(history, "contact_id", "contact")[on_deal]
    roles = (
        history.contacts["role"].to_numpy(dtype=object)
        if history.contacts is not None
        else np.empty(0, dtype=object)
    )
    dm = _take(roles, contact) == "decision_maker"
    values = {
        "out": outbound.astype(np.int32),
        "in": inbound.astype(np.int32),
        "calls": call_out.astype(np.int32),
        "connected": connected.astype(np.int32),
        "missed": missed.astype(np.int32),
        "meetings": meeting.astype(np.int32),
        "dm": dm.astype(np.int32),
    }
    main = EventIndex(opp, at, values, n_keys=len(history.opportunities))
    main.freeze_sums(list(values))
    held = meeting & is_in(a["outcome"], "held")
    held_idx = EventIndex(opp[held], at[held], n_keys=len(history.opportunities))
    return main, held_idx


def everyone_calls_before(history: History, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Everyone's outbound calls (deal or not) strictly before each ``t`` (int64 ns), and how
    many connected: the prior of a deal's connect rate. Read across accounts, so a slice of
    the history takes them from its :class:`~salespilot.features.partitions.CrossAccount`."""
    cross = history.cross_account
    if cross is not None:
        known = cross.calls_before.reindex(t)
        if known["calls"].isna().any():
            raise KeyError("a slice of the history knows everyone's calls on its grid only")
        return known["calls"].to_numpy(np.int64), known["connected"].to_numpy(np.int64)

    def build() -> EventIndex:
        acts = activities_of(history)
        every_call = is_in(acts["channel"], "call") & is_in(acts["direction"], "outbound")
        return EventIndex(
            None,
            acts["occurred_at"].to_numpy()[every_call],
            {"connected": is_in(acts["outcome"], "connected")[every_call].astype(np.int32)},
        )

    everyone = cached(history, "deals.everyone_calls", build).at(None, t)
    return everyone.count(), everyone.sum("connected")


def _signal_features(
    history: History, rows: np.ndarray, t: np.ndarray, age_days: np.ndarray
) -> dict[str, object]:
    main, held_idx = cached(history, "deals.signals", lambda: _signal_index(history))
    q = main.at(rows, t)
    days = np.maximum(age_days, 1.0)
    calls_before, connected_before = everyone_calls_before(history, t)
    connect_prior = smoothed_rate(connected_before, calls_before, 0.3, 10.0)
    calls = q.sum("calls")
    month = pd.Timedelta(days=30)
    return {
        "outbound_per_day": q.sum("out") / days,
        "inbound_per_day": q.sum("in") / days,
        "call_connect_rate": smoothed_rate(
            q.sum("connected"), calls, connect_prior, CONNECT_PRIOR_CALLS
        ),
        "decision_maker_touched": (q.sum("dm") > 0).astype(np.int8),
        "meetings_missed_30d": q.sum("missed", month),
        "days_since_meeting_held": held_idx.at(rows, t).days_since_last(),
        **{
            f"outbound_{w}d_vs_usual": _recent_vs_usual(q, "out", w, age_days)
            for w in RECENT_WINDOWS_DAYS
        },
        "inbound_14d_vs_usual": _recent_vs_usual(q, "in", 14, age_days),
        "meetings_scheduled_30d": q.sum("meetings", month),
    }


def _recent_vs_usual(
    q: PointInTime, name: str, window_days: int, age_days: np.ndarray
) -> np.ndarray:
    """log((touches in the last window + 1/2) / (the deal's earlier rate x window + 1/2)): a
    deal going quiet against its own habit (NaN while the deal is younger than the window)."""
    recent = q.sum(name, pd.Timedelta(days=window_days))
    earlier_days = age_days - window_days
    earlier_rate = (q.sum(name) - recent) / np.where(earlier_days > 0, earlier_days, np.nan)
    return np.log((recent + 0.5) / (earlier_rate * window_days + 0.5))


def _team_of_deals(history: History) -> np.ndarray:
    """Team code of each deal's current owner (-1 unknown): hand-overs stay in the team."""
    return cached(history, "deals.team_of_deals", lambda: _build_team_of_deals(history))


def _build_team_of_deals(history: History) -> np.ndarray:
    reps = history.reps
    team_code = pd.factorize(reps["team"].to_numpy(dtype=object))[0].astype(np.int64)
    owner = column_codes(history, "opportunities", "owner_rep_id", "rep")
    team = (
        np.where(owner >= 0, team_code[np.where(owner >= 0, owner, 0)], -1)
        if team_code.size
        else np.full(owner.size, -1)
    )
    return team


def _pace_indexes(
    history: History, stage_order: Sequence[str]
) -> tuple[EventIndex, EventIndex, int]:
    """Finished stage spells by (team, stage) with the running median dwell (the team's norm),
    and by deal with each spell's log dwell against the norm known when it ended."""
    idx, _, names = cached(
        history, ("deals.stages", tuple(stage_order)), lambda: _stage_indexes(history, stage_order)
    )
    team = _team_of_deals(history)
    n_names = max(len(names), 1)
    groups = idx.group_ids()
    stage = idx.value("stage")
    exit_ns, has_exit, dwell = _spell_exits(history, idx)
    deal_team = team[groups] if groups.size else np.empty(0, dtype=np.int64)
    key = np.where(deal_team >= 0, deal_team * n_names + stage, -1)
    ok = has_exit & (key >= 0)
    n_keys = (int(team.max()) + 1 if team.size else 0) * n_names
    spells = EventIndex(
        key[ok],
        exit_ns[ok].astype("datetime64[ns]"),
        {"dwell": dwell[ok], "deal": groups[ok]},
        n_keys=max(n_keys, 1),
    )
    g = spells.group_ids()
    norm = running_median(spells.value("dwell"), g)
    spells.add_values("norm", norm)
    # the norm before this spell ended (the spell itself not counted)
    prev = np.full(norm.size, np.nan)
    if norm.size:
        prev[1:] = norm[:-1]
        first = np.ones(g.size, dtype=bool)
        first[1:] = g[1:] != g[:-1]
        prev[first] = np.nan
    rel = np.log((spells.value("dwell") + 0.5) / (prev + 0.5))
    has = ~np.isnan(rel)
    by_deal = EventIndex(
        spells.value("deal")[has],
        spells.times[has].astype("datetime64[ns]"),
        {"rel": rel[has]},
        n_keys=len(history.opportunities),
    )
    return spells, by_deal, n_names


def _pace_features(
    history: History,
    rows: np.ndarray,
    t: np.ndarray,
    stage_code: np.ndarray,
    days_in_stage: np.ndarray,
    stage_order: Sequence[str],
) -> dict[str, object]:
    spells, by_deal, n_names = cached(
        history, ("deals.pace", tuple(stage_order)), lambda: _pace_indexes(history, stage_order)
    )
    team = _team_of_deals(history)
    team_now = team[rows]
    key = np.where((team_now >= 0) & (stage_code >= 0), team_now * n_names + stage_code, -1)
    norm = spells.at(key, t).last("norm")
    q = by_deal.at(rows, t)
    n = q.count()
    return {
        "team_stage_norm_days": norm,
        "days_in_stage_vs_team_norm": days_in_stage / np.where(norm > 0, norm, np.nan),
        "pace_vs_team": np.where(n > 0, q.sum("rel") / np.maximum(n, 1), np.nan),
    }
