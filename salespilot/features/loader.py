"""Load an interaction-history folder into a typed, validated :class:`History`.

One entry point, :func:`load_history`: find the files, read each one with every value as
text (so ``007`` stays ``007``) and type each contract column (:mod:`~salespilot.features.reading`),
check every rule (:mod:`~salespilot.features.validation_rules`), and only then build the
:class:`History`. Every problem of every file is collected in one pass and raised together
as a :class:`HistoryValidationError`; nothing is returned half-loaded.

:func:`summarize_history` turns a loaded history into the numbers ``salespilot validate``
prints: rows per table, date range, deals by status, active subscriptions, trainable models.
:func:`read_ids` and :func:`match_id` check an id a user typed without loading everything.
"""

from __future__ import annotations

import difflib
import logging
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from salespilot.features.history import History
from salespilot.features.pit import observed_end
from salespilot.features.reading import (
    ROWS_SHOWN,
    TypedTable,
    discover,
    read_table,
    to_str,
    type_table,
)
from salespilot.features.schema import MODEL_TABLES, TABLES, models_available, models_skipped
from salespilot.features.training_sets import models_without_outcomes
from salespilot.features.validation import HistoryValidationError, Problem
from salespilot.features.validation_rules import (
    check_deals,
    check_references,
    check_rows,
    check_time_order,
)

logger = logging.getLogger(__name__)

__all__ = [
    "HistoryValidationError",
    "Problem",
    "find_all_problems",
    "load_history",
    "summarize_history",
]


def load_history(
    path: str | Path,
    *,
    now: datetime | str | None = None,
    observed_until: datetime | str | None = None,
) -> History:
    """Read and validate a folder of CSV or Parquet files, one per contract table.

    ``now`` bounds event timestamps ("nothing happened in the future"); it defaults to the
    current UTC time - the only clock this module reads - and tests pass it explicitly.
    ``observed_until`` states where the export ends (the ``observed_until`` setting); without
    it, the folder's ``export.json`` (written by ``salespilot import``) may state it, else the
    end is the latest event. No event may lie after a stated end.
    Raises :class:`HistoryValidationError` listing every problem found; returns a
    :class:`History` with ids as ``str``, timestamps as tz-naive UTC ``datetime64[ns]``,
    numbers as float64 / Int64 and extra columns kept as read.
    """
    folder = Path(path)
    now_ts = _as_utc_naive(now)
    if not folder.is_dir():
        raise HistoryValidationError(
            [Problem("missing_folder", f"no history folder at {str(folder)!r}")],
            source=str(folder),
        )
    problems: list[Problem] = []
    sources = discover(folder, problems)
    frames: dict[str, TypedTable] = {}
    for name, (file, fmt) in sources.items():
        raw = read_table(file, fmt, TABLES[name], problems)
        if raw is not None:
            frames[name] = type_table(TABLES[name], file, fmt, raw, problems)
    for frame in frames.values():
        check_rows(frame, now_ts, problems)
    check_references(frames, problems)
    check_deals(frames.get("opportunities"), problems)
    check_time_order(frames, problems)
    if problems:
        raise HistoryValidationError(problems, source=str(folder))
    tables = {name: frame.result() for name, frame in frames.items()}
    history = History(**tables, source=folder, observed_until=_stated_end(folder, observed_until))
    _check_stated_end(history, folder)
    logger.info(
        "loaded history %s: %s",
        folder,
        ", ".join(f"{n}={len(df)}" for n, df in tables.items()),
    )
    return history


def _stated_end(folder: Path, observed_until: datetime | str | None) -> pd.Timestamp | None:
    from salespilot.features.export_end import read_observed_until
    from salespilot.features.pit import to_utc_naive

    if observed_until is not None:
        return to_utc_naive(observed_until).as_unit("ns")
    return read_observed_until(folder)


def _check_stated_end(history: History, folder: Path) -> None:
    """A stated end before the last event would label rows with events it says are unseen."""
    from salespilot.features.pit import last_event

    if history.observed_until is None:
        return
    try:
        last = last_event(history)
    except ValueError:  # no event at all: any stated end will do
        return
    if last > history.observed_until:
        raise HistoryValidationError(
            [
                Problem(
                    "events_after_observed_until",
                    f"the export is stated to end at {history.observed_until.isoformat()} "
                    f"(observed_until), but its latest event is at {last.isoformat()}: state "
                    "an end at or after the last event, or leave it out to infer it",
                )
            ],
            source=str(folder),
        )


def read_ids(path: str | Path, table: str, column: str | None = None) -> list[str] | None:
    """The ids (first key column), or the values of ``column``, of one table of a history
    folder, read without the others.

    For a fast check of an id or name a user typed before loading everything; ``None`` when
    the table cannot be read cleanly (the full :func:`load_history` then reports why).
    """
    folder = Path(path)
    if not folder.is_dir():
        return None
    problems: list[Problem] = []
    found = discover(folder, problems).get(table)
    if found is None:
        return None
    file, fmt = found
    schema = TABLES[table]
    raw = read_table(file, fmt, schema, problems)
    key = column or schema.key[0]
    if raw is None or problems or key not in raw.columns:
        return None
    return to_str(raw[key]).dropna().astype(str).tolist()


def match_id(given: str, known: list[str]) -> tuple[str | None, list[str]]:
    """``(id, [])`` when ``given`` names one of ``known`` (case and zero padding aside:
    ``r00017`` and ``R17`` are ``R00017``); otherwise ``(None, close ids)`` to suggest."""
    if given in known:
        return given, []

    def norm(v: str) -> str:
        v = v.strip().upper()
        head = v.rstrip("0123456789")
        digits = v[len(head) :]
        return f"{head}{int(digits)}" if digits else v

    by_norm: dict[str, list[str]] = {}
    for k in known:
        by_norm.setdefault(norm(k), []).append(k)
    same = by_norm.get(norm(given), [])
    if len(same) == 1:
        return same[0], []
    return None, same or difflib.get_close_matches(given.strip().upper(), known, n=3, cutoff=0.6)


def find_all_problems(path: str | Path, *, now: datetime | str | None = None) -> list[Problem]:
    """Every problem of a folder with ALL its offending rows, not only the first few.

    The same rules as :func:`load_history` (it runs them); ``salespilot import --rejects``
    needs every bad row to set it aside with its reason. An empty list means the folder is valid.
    """
    token = ROWS_SHOWN.set(None)
    try:
        load_history(path, now=now)
    except HistoryValidationError as e:
        return e.problems
    finally:
        ROWS_SHOWN.reset(token)
    return []


def summarize_history(history: History) -> dict[str, Any]:
    """The numbers a user checks after loading: what is there, over which period, and
    which models can be trained (and what to add for the others). JSON-serialisable."""
    try:
        end = observed_end(history)
    except ValueError:  # no event at all (header-only files): nothing is "active"
        end = pd.NaT
    files: dict[str, tuple[Path, str]] = {}
    if history.source is not None and Path(history.source).is_dir():
        files = discover(Path(history.source), [])
    tables: dict[str, Any] = {}
    starts = []
    for name, schema in TABLES.items():
        df = history.table(name)
        if df is None:
            tables[name] = None
            continue
        first = last = None
        cols = [c for c in schema.event_timestamp_columns if c in df.columns]
        if cols and len(df):
            lo = pd.Series([df[c].min() for c in cols], dtype="datetime64[ns]").min()
            hi = pd.Series([df[c].max() for c in cols], dtype="datetime64[ns]").max()
            first, last = _iso(lo), _iso(hi)
            if pd.notna(lo):
                starts.append(lo)
        file = files[name][0].name if name in files else None
        tables[name] = {"file": file, "rows": len(df), "first": first, "last": last}
    opps = history.opportunities
    deals = {s: int((opps["status"] == s).sum()) for s in ("open", "won", "lost")}
    deals["won_amount"] = float(opps.loc[opps["status"] == "won", "amount"].sum())
    deals["open_amount"] = float(opps.loc[opps["status"] == "open", "amount"].sum())
    subs = history.subscriptions
    active_subs = active_value = None
    if subs is not None:
        active = (subs["started_at"] <= end) & (subs["ended_at"].isna() | (subs["ended_at"] > end))
        active_subs = int(active.sum())
        active_value = float(subs.loc[active, "monthly_value"].sum())
    available = models_available(history)
    no_outcomes = models_without_outcomes(history, available)
    reps = history.reps
    reps_active = int(
        ((reps["hired_at"] <= end) & (reps["left_at"].isna() | (reps["left_at"] > end))).sum()
    )
    return {
        "source": str(history.source) if history.source else None,
        "tables": tables,
        "date_range": {"start": _iso(min(starts)) if starts else None, "end": _iso(end)},
        "deals": deals,
        "active_subscriptions": active_subs,
        "active_monthly_value": active_value,
        "reps": len(reps),
        "reps_active": reps_active,
        "accounts": len(history.accounts),
        "models_available": [m for m in available if m not in no_outcomes],
        "models_skipped": {**models_skipped(history), **no_outcomes},
        "model_tables": {m: list(t) for m, t in MODEL_TABLES.items()},
    }


def _as_utc_naive(now: datetime | str | None) -> pd.Timestamp:
    ts = pd.Timestamp.now(tz="UTC") if now is None else pd.Timestamp(now)
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    return ts


def _iso(ts: Any) -> str | None:
    return None if ts is None or pd.isna(ts) else pd.Timestamp(ts).isoformat()
