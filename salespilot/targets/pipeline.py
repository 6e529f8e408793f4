"""Point-in-time pipeline state and the history-estimated close timing of open deals.

Everything here is a pure function of ``(history, as_of)`` and uses only events strictly
before ``as_of``: a deal closed later is shown open, a stage entered later is absent.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from salespilot.features.history import History

log = logging.getLogger(__name__)

AGE_BUCKETS = (0, 30, 90, 180, np.inf)
AGE_LABELS = ("<30d", "30-90d", "90-180d", "180d+")


def open_pipeline(history: History, as_of: pd.Timestamp) -> pd.DataFrame:
    """Deals open at ``as_of`` with their owner, amount, stage and ages.

    Columns: opportunity_id, owner_rep_id, product_line, amount, created_at, stage,
    stage_entered_at, age_days, days_in_stage, age_bucket.
    """
    as_of = pd.Timestamp(as_of)
    deals = _open_at(history, pd.DatetimeIndex([as_of]))
    deals["owner_rep_id"] = _owner_at(history, deals, as_of)
    return deals.drop(columns="snapshot")


def _owner_at(history: History, deals: pd.DataFrame, as_of: pd.Timestamp) -> np.ndarray:
    """Who owned each deal at ``as_of``: the rep of its latest outbound touch before then.

    ``opportunities.owner_rep_id`` is the owner *now*; for a past as_of it would leak a later
    hand-over (a leaver's deals moved to a team mate). Untouched deals keep the current owner.
    """
    act = history.activities
    owner = deals["owner_rep_id"].to_numpy(dtype=object)
    if act is None or act.empty or deals.empty:
        return owner
    a = act[
        (act["occurred_at"] < as_of)
        & (act["direction"] == "outbound")
        & act["opportunity_id"].isin(deals["opportunity_id"])
    ]
    last = a.sort_values("occurred_at", kind="stable").drop_duplicates(
        "opportunity_id", keep="last"
    )
    touched = last.set_index("opportunity_id")["rep_id"].reindex(deals["opportunity_id"])
    return np.where(touched.notna().to_numpy(), touched.to_numpy(dtype=object), owner)


def _open_at(history: History, dates: pd.DatetimeIndex) -> pd.DataFrame:
    """Deals open at each of ``dates`` (one row per deal and date, column ``snapshot``), with
    the stage each was in just before that date - all dates in one vectorised pass."""
    opp = history.opportunities
    created = opp["created_at"].to_numpy()[:, None]
    closed = opp["closed_at"].to_numpy()[:, None]
    d = dates.to_numpy()[None, :]
    is_open = (created < d) & (np.isnat(closed) | (closed >= d))
    deal_idx, date_idx = np.nonzero(is_open)
    cols = ["opportunity_id", "owner_rep_id", "product_line", "amount", "created_at"]
    deals = opp[cols].iloc[deal_idx].reset_index(drop=True)
    deals["snapshot"] = dates[date_idx]
    deals = _attach_stage(history, deals)
    deals["age_days"] = (deals["snapshot"] - deals["created_at"]).dt.total_seconds() / 86400.0
    deals["days_in_stage"] = (
        deals["snapshot"] - deals["stage_entered_at"]
    ).dt.total_seconds() / 86400.0
    deals["age_bucket"] = _age_bucket(deals["age_days"])
    return deals


def _attach_stage(history: History, deals: pd.DataFrame) -> pd.DataFrame:
    sc = history.stage_changes
    if sc is None or sc.empty:
        # No stage log: every deal sits in one pseudo-stage since it was created.
        deals["stage"] = "open"
        deals["stage_entered_at"] = deals["created_at"]
        return deals
    order = deals.index.to_numpy()
    # merge_asof needs one time unit on both sides (loaders and hand-made frames may differ).
    left = deals.assign(_row=order, _t=deals["snapshot"].astype("datetime64[ns]"))
    left = left.sort_values("_t", kind="stable")
    right = sc[["opportunity_id", "changed_at", "stage"]].assign(
        _t=sc["changed_at"].astype("datetime64[ns]")
    )
    right = right.sort_values("_t", kind="stable").drop(columns="changed_at")
    right = right.rename(columns={"_t": "changed_at"})
    # The last stage change strictly before the snapshot (ties: the later row wins).
    merged = pd.merge_asof(
        left,
        right,
        left_on="_t",
        right_on="changed_at",
        by="opportunity_id",
        allow_exact_matches=False,
        direction="backward",
    )
    merged = merged.sort_values("_row").set_index(deals.index).drop(columns=["_row", "_t"])
    # Blank instead of drop, so a deal with no stage yet still counts as pipeline.
    merged["stage"] = merged["stage"].fillna("new").astype(str)
    merged["stage_entered_at"] = merged["changed_at"].fillna(merged["created_at"])
    return merged.drop(columns="changed_at")


def _age_bucket(age_days: pd.Series) -> pd.Series:
    return pd.cut(age_days, bins=list(AGE_BUCKETS), labels=list(AGE_LABELS), right=False).astype(
        str
    )


_SNAPSHOT_CACHE: dict[tuple, tuple[object, pd.DataFrame]] = {}


def pipeline_snapshots(
    history: History, as_of: pd.Timestamp, *, lookback_months: int = 24, step_months: int = 1
) -> pd.DataFrame:
    """Open deals on a monthly grid of past dates, with how (and when) each one ended.

    Cached per (history tables, as_of): the win-rate and close-timing estimates of one
    forecast read the same snapshots.
    """
    key = (
        id(history.opportunities),
        id(history.stage_changes),
        pd.Timestamp(as_of),
        lookback_months,
        step_months,
    )
    hit = _SNAPSHOT_CACHE.get(key)
    # The cache entry holds the frames themselves, so their ids cannot be reused meanwhile.
    if hit is not None and hit[0] is history.opportunities:
        return hit[1]
    snaps = _pipeline_snapshots(history, as_of, lookback_months, step_months)
    if len(_SNAPSHOT_CACHE) >= 8:
        _SNAPSHOT_CACHE.pop(next(iter(_SNAPSHOT_CACHE)))
    _SNAPSHOT_CACHE[key] = (history.opportunities, snaps)
    return snaps


def _pipeline_snapshots(
    history: History, as_of: pd.Timestamp, lookback_months: int, step_months: int
) -> pd.DataFrame:
    """``outcome`` is won / lost / open as known at ``as_of``; ``days_to_close`` is measured from
    the snapshot date. Used to estimate win rates and close timing by stage and age.
    """
    as_of = pd.Timestamp(as_of)
    opp = history.opportunities.set_index("opportunity_id")
    known_close = opp["closed_at"].where(opp["closed_at"] < as_of)
    outcome = opp["status"].where(known_close.notna(), "open").astype(str)
    dates = pd.DatetimeIndex(
        [(as_of - pd.DateOffset(months=k)).normalize()
         for k in range(step_months, lookback_months + 1, step_months)]
    )  # fmt: skip
    deals = _open_at(history, dates)
    frames = []
    if not deals.empty:
        deals["outcome"] = outcome.reindex(deals["opportunity_id"]).to_numpy()
        close = pd.to_datetime(known_close.reindex(deals["opportunity_id"]).to_numpy())
        deals["days_to_close"] = (close - deals["snapshot"]).dt.total_seconds() / 86400.0
        frames.append(deals)
    if not frames:
        return pd.DataFrame(
            columns=[
                "snapshot",
                "opportunity_id",
                "stage",
                "age_bucket",
                "outcome",
                "days_to_close",
            ]
        )
    return pd.concat(frames, ignore_index=True)


def _shrunk_rate(
    hits: pd.Series, n: pd.Series, prior: pd.Series | float, strength: float
) -> pd.Series:
    return (hits + strength * prior) / (n + strength)


def empirical_win_probability(
    history: History, as_of: pd.Timestamp, deals: pd.DataFrame, *, strength: float = 20.0
) -> pd.DataFrame:
    """A model-free ``p_win`` for open deals: the historical win rate by stage and age.

    Among deals that were open on past snapshot dates in the same stage and age bucket and
    have since closed, the share that was won (shrunk towards the stage's, then the overall
    rate). Calibrated by construction; used when no champion model is available and in the
    backtest, where it needs only data before each period.
    """
    snaps = pipeline_snapshots(history, as_of)
    resolved = snaps[snaps["outcome"].isin(["won", "lost"])]
    out = deals[["opportunity_id"]].copy()
    if resolved.empty:
        out["p_win"] = 0.2
        return out
    won = resolved["outcome"].eq("won")
    overall = float(won.mean())
    by_stage = won.groupby(resolved["stage"]).agg(["sum", "count"])
    stage_rate = _shrunk_rate(by_stage["sum"], by_stage["count"], overall, strength)
    by_cell = won.groupby([resolved["stage"], resolved["age_bucket"]]).agg(["sum", "count"])
    cell_prior = stage_rate.reindex(by_cell.index.get_level_values(0)).to_numpy()
    cell_rate = _shrunk_rate(by_cell["sum"], by_cell["count"], cell_prior, strength)
    key = pd.MultiIndex.from_arrays([deals["stage"], deals["age_bucket"]])
    p = cell_rate.reindex(key).to_numpy()
    p = np.where(np.isnan(p), stage_rate.reindex(deals["stage"]).to_numpy(), p)
    out["p_win"] = np.where(np.isnan(p), overall, p)
    return out


def close_within_window(
    history: History,
    as_of: pd.Timestamp,
    deals: pd.DataFrame,
    window_start: pd.Timestamp,
    window_end: pd.Timestamp,
    *,
    strength: float = 10.0,
) -> np.ndarray:
    """P(a deal that will be won closes inside ``[window_start, window_end)`` | stage, age).

    Estimated from past snapshots old enough for the whole window to have been observed:
    among their deals later won, the share won between the same offsets from the snapshot.
    Shrunk towards the stage's, then the overall share, so rare cells stay sensible.
    """
    as_of = pd.Timestamp(as_of)
    lo = max(0.0, (pd.Timestamp(window_start) - as_of).total_seconds() / 86400.0)
    hi = (pd.Timestamp(window_end) - as_of).total_seconds() / 86400.0
    if hi <= 0:
        return np.zeros(len(deals))
    snaps = pipeline_snapshots(history, as_of)
    old_enough = snaps["snapshot"] <= as_of - pd.Timedelta(days=hi)
    won = snaps[old_enough & snaps["outcome"].eq("won")]
    if len(won) < 5:
        # Too little history to learn timing from: fall back to "closes within the window
        # if the window covers at least 90 days", the usual sales-cycle rule of thumb.
        log.warning("fewer than 5 won deals to learn close timing from; using a flat rule")
        return np.full(len(deals), min(1.0, (hi - lo) / 90.0))
    inside = (won["days_to_close"] >= lo) & (won["days_to_close"] < hi)
    overall = float(inside.mean())
    by_stage = inside.groupby(won["stage"]).agg(["sum", "count"])
    stage_rate = _shrunk_rate(by_stage["sum"], by_stage["count"], overall, strength)
    by_cell = inside.groupby([won["stage"], won["age_bucket"]]).agg(["sum", "count"])
    cell_prior = stage_rate.reindex(by_cell.index.get_level_values(0)).to_numpy()
    cell_rate = _shrunk_rate(by_cell["sum"], by_cell["count"], cell_prior, strength)
    key = pd.MultiIndex.from_arrays([deals["stage"], deals["age_bucket"]])
    p = cell_rate.reindex(key).to_numpy()
    p = np.where(np.isnan(p), stage_rate.reindex(deals["stage"]).to_numpy(), p)
    return np.where(np.isnan(p), overall, p)
