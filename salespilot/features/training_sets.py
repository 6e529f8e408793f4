"""Labelled training sets: snapshots on a grid of as_of dates, joined with their labels.

Training reads these through one call, ``build_training_set(history, "deals", grid, 90)``,
so the training engineer never re-implements "what was known when".
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Literal

import pandas as pd

from salespilot.features.history import History
from salespilot.features.pit import as_of_index, observed_end

log = logging.getLogger(__name__)

#: Bump when any feature's definition, name or dtype changes (stored with every snapshot).
FEATURE_SET_VERSION = "2026.11.27-1"

TableName = Literal["deals", "accounts", "attempts"]
TABLE_NAMES: tuple[str, ...] = ("deals", "accounts", "attempts")
#: Entity id column of each table.
ENTITY_COLUMNS: dict[str, str] = {
    "deals": "opportunity_id",
    "accounts": "account_id",
    "attempts": "activity_id",
}


def history_start(history: History) -> pd.Timestamp:
    """The earliest deal creation (the first moment there is anything to score)."""
    return pd.Timestamp(history.opportunities["created_at"].min())


def as_of_grid(
    history: History,
    start: pd.Timestamp | str | None = None,
    end: pd.Timestamp | str | None = None,
    freq: str = "W-MON",
) -> pd.DatetimeIndex:
    """Snapshot dates from ``start`` to ``end`` (default: the history's first deal to its end).

    Dates are midnight UTC on the ``freq`` anchor (Mondays by default), so a snapshot holds
    everything recorded up to the end of the previous Sunday.
    """
    start = history_start(history) if start is None else pd.Timestamp(start)
    end = observed_end(history) if end is None else pd.Timestamp(end)
    return pd.date_range(start.normalize(), end, freq=freq).as_unit("ns")


def snapshot(
    history: History, table: TableName, as_of: pd.Timestamp | str | pd.DatetimeIndex
) -> pd.DataFrame:
    """Feature rows of one table for one as_of or a grid (no labels)."""
    return _builders()[table][0](history, as_of)


def build_training_set(
    history: History,
    table: TableName,
    grid: pd.DatetimeIndex | list | None = None,
    horizon_days: int = 90,
) -> pd.DataFrame:
    """Snapshots of ``table`` on ``grid`` with their ``label_*`` columns.

    ``deals`` and ``accounts`` have one row per entity and as_of; ``attempts`` has one row per
    outbound call/email whose time falls inside the grid's span (its as_of is the attempt
    time, ``horizon_days`` is unused). Rows whose label is unknown keep NaN labels: drop them
    for training, keep them for scoring.
    """
    if table not in TABLE_NAMES:
        raise ValueError(f"unknown table {table!r}; choose one of {', '.join(TABLE_NAMES)}")
    grid = as_of_grid(history) if grid is None else as_of_index(grid)
    build, label = _builders()[table]
    if table == "attempts":
        from salespilot.features.contacts import contact_attempts

        start = grid.min() if len(grid) else None
        end = grid.max() if len(grid) else None
        frame = contact_attempts(history, start=start, end=end)
        log.info("attempts: %d rows between %s and %s", len(frame), start, end)
        return frame
    frame = build(history, grid)
    log.info("%s: %d rows over %d as_of dates", table, len(frame), len(grid))
    return label(frame, history, horizon_days)


def _builders() -> dict[str, tuple[Callable, Callable]]:
    # imported lazily so a missing optional table only matters for the table that needs it
    from salespilot.features.deals import add_deal_labels, deal_snapshot

    builders: dict[str, tuple[Callable, Callable]] = {"deals": (deal_snapshot, add_deal_labels)}
    try:
        from salespilot.features.accounts import account_snapshot, add_account_labels

        builders["accounts"] = (account_snapshot, add_account_labels)
    except ImportError:  # pragma: no cover - during development only
        pass
    try:
        from salespilot.features.contacts import contact_attempts

        builders["attempts"] = (
            lambda h, as_of: contact_attempts(h),
            lambda f, h, d: f,
        )
    except ImportError:  # pragma: no cover
        pass
    return builders
