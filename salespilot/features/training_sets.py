"""Labelled training sets: snapshots on a grid of as_of dates, joined with their labels.

Training reads these through one call, ``build_training_set(history, "deals", grid, 90)``,
so the training engineer never re-implements "what was known when".
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Literal

import numpy as np
import pandas as pd

from salespilot.features.history import History
from salespilot.features.pit import as_of_index, feature_cache, observed_end

log = logging.getLogger(__name__)

#: Bump when any feature's definition, name or dtype changes (stored with every snapshot).
FEATURE_SET_VERSION = "2026.11.27-4"

#: Days after the first deal before the default grid starts (look-back windows fill up).
DEFAULT_WARMUP_DAYS = 60

#: A deal-less history's grid starts this many days before its first subscription end.
CHURN_ONLY_LEAD_DAYS = 180

TableName = Literal["deals", "accounts", "attempts"]
TABLE_NAMES: tuple[str, ...] = ("deals", "accounts", "attempts")
#: The feature table each model trains on (its spec's ``table``; a test checks they agree).
MODEL_FEATURE_TABLES: dict[str, str] = {
    "win_probability": "deals",
    "churn_risk": "accounts",
    "contact_time": "attempts",
}


def models_without_outcomes(history: History, models: list[str]) -> dict[str, str]:
    """For each of ``models`` (whose tables are present) that has no outcome to learn from:
    the message ``validate`` and ``train`` both show (on the rows the history chose for it)."""
    from salespilot.features.model_rows import read_model_rows

    chosen = read_model_rows(history.source)
    out = {}
    for model in models:
        decision = model in chosen and chosen[model].rows == "decision"
        gap = outcome_gap(history, MODEL_FEATURE_TABLES[model], decision_rows=decision)
        if gap is not None:
            out[model] = f"{model} cannot be trained: {gap}"
    return out


#: Entity id column of each table.
ENTITY_COLUMNS: dict[str, str] = {
    "deals": "opportunity_id",
    "accounts": "account_id",
    "attempts": "activity_id",
}


def history_start(history: History) -> pd.Timestamp:
    """The earliest deal creation (the first moment there is anything to score).

    A history without deals (a churn-only export: accounts and subscriptions) starts where
    its outcomes start: ``CHURN_ONLY_LEAD_DAYS`` before the first subscription end (years of
    subscriptions before any recorded churn would fill the train period with rows that hold
    no churner), or at the first subscription start or account creation when none ended.
    """
    start = pd.Timestamp(history.opportunities["created_at"].min())
    if pd.notna(start):
        return start
    firsts = [
        pd.Timestamp(df[col].min())
        for table, col in (("subscriptions", "started_at"), ("accounts", "created_at"))
        if (df := history.table(table)) is not None and len(df) and pd.notna(df[col].min())
    ]
    if not firsts:
        raise ValueError("the history holds no deals, subscriptions or accounts to start from")
    subs = history.subscriptions
    first_end = subs["ended_at"].min() if subs is not None and len(subs) else pd.NaT
    if pd.notna(first_end):
        return max(min(firsts), pd.Timestamp(first_end) - pd.Timedelta(days=CHURN_ONLY_LEAD_DAYS))
    return min(firsts)


def outcome_gap(history: History, table: str, *, decision_rows: bool = False) -> str | None:
    """Why ``table``'s training set can hold no labelled row of both classes, or None.

    The cheap checks behind ``validate``'s "can be trained" and ``train``'s skip message, so
    the two agree: deals need won deals and others (lost, or still open: not won within the
    horizon), and closed deals that were open at some weekly snapshot,
    accounts need subscriptions of which at least one ended, attempts need outbound calls or
    emails to a contact.
    """
    if table == "deals":
        opps = history.opportunities
        if not len(opps):
            return "the opportunities table has no rows"
        won = int((opps["status"] == "won").sum())
        if not won or won == len(opps):
            other = len(opps) - won
            return f"{won} won and {other} lost or open deals: a win model needs both"
        closed = opps[opps["status"].isin(["won", "lost"])]
        first_monday = (closed["created_at"] + pd.offsets.Week(weekday=0)).dt.normalize()
        if not decision_rows and not (first_monday <= closed["closed_at"]).any():
            return (
                f"none of the {len(closed)} closed deals was open at a weekly snapshot (Monday "
                "midnight UTC): each was decided within days of its creation, and the weekly "
                "grid scores only deals still open at a snapshot (score each deal once at "
                "its decision time instead: a model spec with rows='decision')"
            )
        return None
    if table == "accounts":
        subs = history.subscriptions
        if subs is None or not len(subs):
            return "the subscriptions table has no rows"
        if not subs["ended_at"].notna().any():
            return f"none of the {len(subs)} subscriptions ended: no churn to learn from"
        return None
    if table == "attempts":
        acts = history.activities
        if acts is None or not len(acts):
            return "the activities table has no rows"
        from salespilot.features.contacts import ATTEMPT_CHANNELS

        pick = (
            (acts["direction"] == "outbound")
            & acts["channel"].isin(ATTEMPT_CHANNELS)
            & acts["contact_id"].notna()
        )
        if not pick.any():
            return "no outbound call or email to a contact in the activities table"
        return None
    raise ValueError(f"unknown table {table!r}; choose one of {', '.join(TABLE_NAMES)}")


def as_of_grid(
    history: History,
    start: pd.Timestamp | str | None = None,
    end: pd.Timestamp | str | None = None,
    freq: str = "W-MON",
    *,
    warmup_days: int = DEFAULT_WARMUP_DAYS,
) -> pd.DatetimeIndex:
    """Snapshot dates from ``start`` to ``end``.

    Defaults: from ``warmup_days`` after the history's first deal (so the 30/90-day look-back
    windows have data behind them) to its last event. Dates are midnight UTC on the ``freq``
    anchor (Mondays by default): a snapshot holds everything recorded before that midnight.
    """
    if start is None:
        start = history_start(history) + pd.Timedelta(days=warmup_days)
    start = pd.Timestamp(start)
    end = observed_end(history) if end is None else pd.Timestamp(end)
    return pd.date_range(start.normalize(), end, freq=freq).as_unit("ns")


def warm_up_rows(
    history: History,
    table: TableName,
    freq: str = "W-MON",
    *,
    warmup_days: int = DEFAULT_WARMUP_DAYS,
) -> pd.DataFrame:
    """The candidate rows (entity id, ``as_of``) the default grid's warm-up leaves out: the
    entities a snapshot on the same ``freq`` anchor would hold from the history's start up to
    the grid's first date (attempts: those made before it). No features are computed."""
    grid = as_of_grid(history, freq=freq, warmup_days=warmup_days)
    first = grid[0] if len(grid) else observed_end(history)
    key = ENTITY_COLUMNS[table]
    if table == "attempts":
        from salespilot.features.contacts import contact_attempts

        rows = contact_attempts(history, end=first - pd.Timedelta(1))
        return rows[[key, "contact_id", "as_of"]].reset_index(drop=True)
    dates = pd.date_range(
        history_start(history).normalize(), first, freq=freq, inclusive="left"
    ).as_unit("ns")
    if table == "deals":
        from salespilot.features.deals import open_deal_rows

        idx, t = open_deal_rows(history, dates)
        ids = history.opportunities[key].to_numpy(dtype=object)[idx]
    else:
        from salespilot.features.accounts import active_account_rows

        idx, t = active_account_rows(history, dates)
        ids = history.accounts[key].to_numpy(dtype=object)[idx]
    return pd.DataFrame({key: ids, "as_of": t.astype("datetime64[ns]")})


def snapshot(
    history: History,
    table: Literal["deals", "accounts"],
    as_of: pd.Timestamp | str | pd.DatetimeIndex,
) -> pd.DataFrame:
    """Feature rows of deals or accounts for one as_of or a grid (no labels)."""
    return _builders()[table][0](history, as_of)


def build_training_set(
    history: History,
    table: TableName,
    grid: pd.DatetimeIndex | list | None = None,
    horizon_days: int = 90,
    *,
    progress: Callable[[int, int], None] | None = None,
    chunk_size: int = 8,
    account_ids: Iterable[str] | None = None,
) -> pd.DataFrame:
    """Snapshots of ``table`` on ``grid`` with their ``label_*`` columns.

    ``deals`` and ``accounts`` have one row per entity and as_of; ``attempts`` has one row per
    outbound call/email whose time falls inside the grid's span (its as_of is the attempt
    time, ``horizon_days`` is unused). Rows whose label is unknown keep NaN labels: drop them
    for training, keep them for scoring. ``account_ids``: only the rows of those accounts
    (their deals, themselves, their attempts), e.g. one group of
    :func:`~salespilot.features.partitions.account_groups`.

    The grid is built ``chunk_size`` dates at a time (the event indexes are built once and
    cached on ``history``), calling ``progress(done, total)`` after each chunk.
    """
    if table not in TABLE_NAMES:
        raise ValueError(f"unknown table {table!r}; choose one of {', '.join(TABLE_NAMES)}")
    grid = as_of_grid(history) if grid is None else as_of_index(grid)
    ids = None if account_ids is None else list(account_ids)
    with feature_cache(history):
        return _build(history, table, grid, horizon_days, progress, chunk_size, ids)


def build_decision_set(
    history: History,
    table: TableName = "deals",
    horizon_days: int = 90,
    *,
    at: str | None = None,
) -> pd.DataFrame:
    """One row per entity as of its own decision time, with its ``label_*`` columns for
    ``horizon_days`` after that time and ``resolved_at``: when the label became known, so a
    split can embargo exactly the rows whose outcome was not yet known.

    ``at`` (default :data:`~salespilot.features.model_rows.DEFAULT_DECISION_AT`): a deal at
    its ``created_at`` (or another opportunities column), an attempt - a call - at its start
    (``occurred_at``), an account at ``snapshot`` (the observed end minus the horizon: the
    latest date whose outcome is fully known) or at an accounts column (each customer's own
    snapshot date). Features are the same point-in-time features as on the grid.
    """
    from salespilot.features.model_rows import DEFAULT_DECISION_AT

    if table not in DEFAULT_DECISION_AT:
        raise ValueError(f"unknown table {table!r}; choose one of {', '.join(TABLE_NAMES)}")
    at = at or DEFAULT_DECISION_AT[table]
    with feature_cache(history):
        if table == "deals":
            frame, resolved = _deal_decisions(history, horizon_days, at)
        elif table == "attempts":
            frame, resolved = _attempt_decisions(history, horizon_days, at)
        else:
            frame, resolved = _account_decisions(history, horizon_days, at)
    frame["resolved_at"] = pd.Series(resolved, index=frame.index).astype("datetime64[ns]")
    log.info("%s: %d decision-time rows (at %s)", table, len(frame), at)
    return frame


def _horizon_end(frame: pd.DataFrame, horizon_days: int) -> np.ndarray:
    return frame["as_of"].to_numpy("datetime64[ns]") + np.timedelta64(int(horizon_days), "D")


def _deal_decisions(
    history: History, horizon_days: int, at: str
) -> tuple[pd.DataFrame, np.ndarray]:
    """Deals at ``at``; a label is known at the deal's close, or at the end of its horizon."""
    from salespilot.features.deals import add_deal_labels, deal_decision_snapshot

    frame = add_deal_labels(
        deal_decision_snapshot(history, at=at, horizon_days=horizon_days), history, horizon_days
    )
    codes = pd.Index(history.opportunities["opportunity_id"]).get_indexer(frame["opportunity_id"])
    closed = history.opportunities["closed_at"].to_numpy("datetime64[ns]")[codes]
    horizon_end = _horizon_end(frame, horizon_days)
    return frame, np.where(pd.isna(closed) | (closed > horizon_end), horizon_end, closed)


def _attempt_decisions(
    history: History, horizon_days: int, at: str
) -> tuple[pd.DataFrame, np.ndarray]:
    """Every outbound attempt at its start - no warm-up cut, as a flat call list has none;
    its outcome is known within the attempt's own window (``horizon_days``)."""
    from salespilot.features.contacts import contact_attempts

    if at not in ("occurred_at", "as_of"):
        raise ValueError(f"an attempt's decision time is its start (occurred_at), not {at!r}")
    frame = contact_attempts(history)
    return frame, _horizon_end(frame, horizon_days)


def _account_decisions(
    history: History, horizon_days: int, at: str
) -> tuple[pd.DataFrame, np.ndarray]:
    """Customers with an active subscription at the snapshot date (or each at its own date in
    the accounts column ``at``), labelled churned within ``horizon_days`` after it."""
    from salespilot.features.accounts import account_snapshot, add_account_labels

    if at == "snapshot":
        end = observed_end(history) - pd.Timedelta(days=int(horizon_days))
        frame = account_snapshot(history, [end])
    else:
        accounts = history.accounts
        if at not in accounts.columns:
            raise ValueError(
                f"an account's decision time is 'snapshot' or an accounts column, not {at!r}"
            )
        when = pd.to_datetime(accounts[at])
        parts = [
            account_snapshot(history, [t], account_ids=accounts.loc[when == t, "account_id"])
            for t in sorted(when.dropna().unique())
        ]
        frame = _concat_keeping_categories(parts) if parts else account_snapshot(history, [])
    frame = add_account_labels(frame.reset_index(drop=True), history, horizon_days)
    return frame, _horizon_end(frame, horizon_days)


def _build(
    history: History,
    table: str,
    grid: pd.DatetimeIndex,
    horizon_days: int,
    progress: Callable[[int, int], None] | None,
    chunk_size: int,
    account_ids: list[str] | None = None,
) -> pd.DataFrame:
    if table == "attempts":
        from salespilot.features.contacts import contact_attempts

        # attempts are rows of their own time: take those from the first as_of up to one grid
        # step past the last one (the span the grid's snapshots stand for)
        start = grid.min() if len(grid) else None
        step = grid[-1] - grid[-2] if len(grid) > 1 else pd.Timedelta(days=7)
        end = grid.max() + step - pd.Timedelta(1) if len(grid) else None
        frame = contact_attempts(history, start=start, end=end, account_ids=account_ids)
        if progress is not None:
            progress(len(grid), len(grid))
        log.info("attempts: %d rows between %s and %s", len(frame), start, end)
        return frame
    build, label = _builders()[table]
    parts = []
    for i in range(0, max(len(grid), 1), chunk_size):
        chunk = grid[i : i + chunk_size]
        extra = {"horizon_days": horizon_days} if table == "deals" else {}
        parts.append(build(history, chunk, account_ids=account_ids, **extra))
        if progress is not None:
            progress(min(i + chunk_size, len(grid)), len(grid))
    frame = _concat_keeping_categories(parts)
    log.info("%s: %d rows over %d as_of dates", table, len(frame), len(grid))
    return label(frame, history, horizon_days)


def _concat_keeping_categories(parts: list[pd.DataFrame]) -> pd.DataFrame:
    """Concatenate snapshots whose category columns may hold different categories."""
    if len(parts) == 1:
        return parts[0]
    cats = [c for c in parts[0].columns if isinstance(parts[0][c].dtype, pd.CategoricalDtype)]
    frame = pd.concat(parts, ignore_index=True)
    for c in cats:
        if not isinstance(frame[c].dtype, pd.CategoricalDtype):
            values = frame[c].astype(object)
            frame[c] = pd.Categorical(
                values.where(values.notna(), None), categories=sorted(values.dropna().unique())
            )
    return frame


def _builders() -> dict[str, tuple[Callable, Callable]]:
    from salespilot.features.accounts import account_snapshot, add_account_labels
    from salespilot.features.deals import add_deal_labels, deal_snapshot

    return {
        "deals": (deal_snapshot, add_deal_labels),
        "accounts": (account_snapshot, add_account_labels),
    }
