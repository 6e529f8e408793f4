"""Load an interaction-history folder into a typed, validated :class:`History`.

One entry point, :func:`load_history`, built from small private steps: find the files, read
each one with every value as text (so ``007`` stays ``007``), type each contract column,
check every rule, and only then build the :class:`History`. Every problem of every file is
collected in one pass and raised together as a :class:`HistoryValidationError`; nothing is
returned half-loaded. All steps are vectorised pandas/pyarrow, so a table of millions of
activities loads in seconds.

:func:`summarize_history` turns a loaded history into the numbers ``salespilot validate``
prints: rows per table, date range, deals by status, active subscriptions, trainable models.
"""

from __future__ import annotations

import csv
import difflib
import gzip
import logging
import zoneinfo
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from salespilot.features.history import History
from salespilot.features.pit import observed_end
from salespilot.features.schema import (
    MODEL_TABLES,
    REQUIRED_TABLES,
    TABLES,
    TIME_ORDER,
    Column,
    TableSchema,
    models_available,
    models_skipped,
)
from salespilot.features.training_sets import models_without_outcomes
from salespilot.features.validation import MAX_EXAMPLES, HistoryValidationError, Problem

logger = logging.getLogger(__name__)

__all__ = [
    "HistoryValidationError",
    "Problem",
    "find_all_problems",
    "load_history",
    "summarize_history",
]

_FORMATS = {".csv": "csv", ".csv.gz": "csv", ".parquet": "parquet", ".pq": "parquet"}
# Timestamps outside what datetime64[ns] can hold are reported, not silently wrapped.
_TS_MIN = pd.Timestamp("1678-01-01")
_TS_MAX = pd.Timestamp("2262-01-01")
# Whole numbers are read through float64: beyond 2**53 they are no longer exact (and beyond
# 2**63 they do not fit the integer column), so they are reported as too large.
MAX_WHOLE_NUMBER = 2**53


# -- public -------------------------------------------------------------------------------------


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
    sources = _discover(folder, problems)
    frames: dict[str, _Frame] = {}
    for name, (file, fmt) in sources.items():
        raw = _read(file, fmt, TABLES[name], problems)
        if raw is not None:
            frames[name] = _type_table(TABLES[name], file, fmt, raw, problems)
    for frame in frames.values():
        _check_rows(frame, now_ts, problems)
    _check_references(frames, problems)
    _check_deals(frames.get("opportunities"), problems)
    _check_time_order(frames, problems)
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
    found = _discover(folder, problems).get(table)
    if found is None:
        return None
    file, fmt = found
    schema = TABLES[table]
    raw = _read(file, fmt, schema, problems)
    key = column or schema.key[0]
    if raw is None or problems or key not in raw.columns:
        return None
    return _to_str(raw[key]).dropna().astype(str).tolist()


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


# How many offending rows a Problem carries; find_all_problems lifts the limit.
_ROWS_SHOWN: ContextVar[int | None] = ContextVar("rows_shown", default=MAX_EXAMPLES)


def find_all_problems(path: str | Path, *, now: datetime | str | None = None) -> list[Problem]:
    """Every problem of a folder with ALL its offending rows, not only the first few.

    The same rules as :func:`load_history` (it runs them); ``salespilot import --rejects``
    needs every bad row to set it aside with its reason. An empty list means the folder is valid.
    """
    token = _ROWS_SHOWN.set(None)
    try:
        load_history(path, now=now)
    except HistoryValidationError as e:
        return e.problems
    finally:
        _ROWS_SHOWN.reset(token)
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
        files = _discover(Path(history.source), [])
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


# -- finding the files --------------------------------------------------------------------------


def _split_name(p: Path) -> tuple[str, str | None]:
    """``Reps.CSV`` -> ("reps", "csv"); files of other formats -> (name, None)."""
    lower = p.name.lower()
    for suffix, fmt in sorted(_FORMATS.items(), key=lambda kv: -len(kv[0])):
        if lower.endswith(suffix):
            return lower[: -len(suffix)], fmt
    return lower, None


def _discover(folder: Path, problems: list[Problem]) -> dict[str, tuple[Path, str]]:
    found: dict[str, list[tuple[Path, str]]] = {t: [] for t in TABLES}
    lookalikes: dict[str, list[Path]] = {t: [] for t in TABLES}
    for p in sorted(folder.iterdir()):
        if not p.is_file() or p.name.startswith("."):
            continue
        stem, fmt = _split_name(p)
        if fmt is None:
            continue
        if stem in TABLES:
            found[stem].append((p, fmt))
            continue
        close = difflib.get_close_matches(stem, list(TABLES), n=1, cutoff=0.75)
        if close:
            lookalikes[close[0]].append(p)
        else:
            logger.info("ignoring %s: not a contract table (%s)", p.name, ", ".join(TABLES))
    sources: dict[str, tuple[Path, str]] = {}
    for table, files in found.items():
        if len(files) > 1:
            names = " and ".join(f.name for f, _ in files)
            problems.append(
                Problem(
                    "duplicate_file",
                    f"table {table!r} is in {len(files)} files ({names}); keep exactly one",
                    file=files[0][0].name,
                    table=table,
                )
            )
        elif files:
            sources[table] = files[0]
            for other in lookalikes[table]:
                logger.warning(
                    "ignoring %s: %s is the %s table", other.name, files[0][0].name, table
                )
        elif lookalikes[table]:
            names = ", ".join(repr(p.name) for p in lookalikes[table])
            rule = "missing_table" if table in REQUIRED_TABLES else "misspelt_table"
            problems.append(
                Problem(
                    rule,
                    f"no file for table {table!r}, but {names} looks like it: rename it to "
                    f"'{table}.csv' (or '{table}.parquet')",
                    file=lookalikes[table][0].name,
                    table=table,
                )
            )
        elif table in REQUIRED_TABLES:
            cols = ", ".join(TABLES[table].column_names)
            problems.append(
                Problem(
                    "missing_table",
                    f"required table {table!r} is missing: add '{table}.csv' (or "
                    f"'{table}.parquet') with columns {cols}",
                    file=f"{table}.csv",
                    table=table,
                )
            )
    return sources


# -- reading ------------------------------------------------------------------------------------


def _read(
    file: Path, fmt: str, schema: TableSchema, problems: list[Problem]
) -> pd.DataFrame | None:
    try:
        if fmt == "csv":
            return _read_csv(file, schema, problems)
        return pd.read_parquet(file)
    except (pa.ArrowException, OSError, ValueError, UnicodeDecodeError, csv.Error) as exc:
        problems.append(
            Problem(
                "unreadable_file",
                f"cannot read {file.name} as {fmt.upper()}: {exc}",
                file=file.name,
                table=schema.name,
            )
        )
        return None


def _read_csv(file: Path, schema: TableSchema, problems: list[Problem]) -> pd.DataFrame | None:
    """Every column as text (null only when empty), so typing is ours and ids keep zeros."""
    opener = gzip.open if file.name.lower().endswith(".gz") else open
    with opener(file, "rt", encoding="utf-8-sig", newline="") as f:
        header = next(csv.reader(f), None)
    if not header:
        problems.append(
            Problem(
                "unreadable_file",
                f"{file.name} is empty: the first line must be the header "
                f"({', '.join(schema.column_names)})",
                file=file.name,
                table=schema.name,
            )
        )
        return None
    if len(header) == 1 and any(sep in header[0] for sep in ";\t|"):
        problems.append(
            Problem(
                "unreadable_file",
                f"{file.name} does not look comma-separated (header {header[0][:60]!r}): "
                "export it as CSV with ',' between values",
                file=file.name,
                table=schema.name,
            )
        )
        return None
    dupes = sorted({c for c in header if header.count(c) > 1})
    if dupes:
        problems.append(
            Problem(
                "duplicate_column",
                f"column name(s) {', '.join(map(repr, dupes))} appear more than once in the header",
                file=file.name,
                table=schema.name,
                column=dupes[0],
            )
        )
        return None
    convert = pa_csv.ConvertOptions(
        column_types=dict.fromkeys(header, pa.string()),
        strings_can_be_null=True,
        null_values=[""],
        quoted_strings_can_be_null=True,
    )
    invalid: list[pa_csv.InvalidRow] = []

    def skip(row: pa_csv.InvalidRow) -> str:
        invalid.append(row)
        return "skip"

    # Empty lines are read as rows of nulls rather than skipped, so a row's index still maps
    # to its line in the file; they are dropped after reading, index kept.
    parse = pa_csv.ParseOptions(ignore_empty_lines=False, invalid_row_handler=skip)
    table = pa_csv.read_csv(file, parse_options=parse, convert_options=convert)
    if invalid and any(r.number is None for r in invalid):
        # Rare: re-read on one thread, the only way pyarrow tells the line numbers.
        invalid.clear()
        table = pa_csv.read_csv(
            file,
            read_options=pa_csv.ReadOptions(use_threads=False),
            parse_options=parse,
            convert_options=convert,
        )
    if invalid:
        problems.append(
            _bad_rows(file, schema, len(header), sorted(invalid, key=lambda r: r.number))
        )
        return None
    df = table.to_pandas()
    if len(df.columns) > 1:
        df = df.dropna(how="all")
    return df


def _bad_rows(file: Path, schema: TableSchema, width: int, rows: list) -> Problem:
    n = len(rows)
    first = rows[:MAX_EXAMPLES]
    return Problem(
        "bad_row",
        f"{n} line{'s' if n != 1 else ''} do{'es' if n == 1 else ''} not have the header's "
        f"{width} fields (a stray comma or an unclosed quote?)",
        file=file.name,
        table=schema.name,
        count=n,
        rows=tuple(int(r.number) for r in first),
        row_kind="line",
        examples=tuple({"fields": r.actual_columns, "text": r.text[:120]} for r in first),
    )


# -- typing -------------------------------------------------------------------------------------


@dataclass
class _Frame:
    """One table in flight: the values as read, the typed contract columns, and which
    values failed typing (so a bad value is reported once, not again as "empty")."""

    schema: TableSchema
    file: Path
    fmt: str
    raw: pd.DataFrame
    typed: dict[str, pd.Series] = field(default_factory=dict)
    bad: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.schema.name

    def result(self) -> pd.DataFrame:
        cols: dict[str, pd.Series] = {}
        for col in self.schema.columns:
            s = self.typed[col.name]
            if col.kind == "int":
                s = s.astype("Int64" if col.nullable else "int64")
            cols[col.name] = s
        for extra in self.raw.columns:
            if extra not in cols:
                cols[extra] = self.raw[extra]
        return pd.DataFrame(cols).reset_index(drop=True)

    def problem(
        self,
        rule: str,
        mask: np.ndarray | pd.Series,
        message: str,
        column: str | None,
        show: list[str],
    ) -> Problem | None:
        """A problem for the rows where ``mask`` holds, or None when there are none."""
        mask = np.asarray(mask.fillna(False) if isinstance(mask, pd.Series) else mask, dtype=bool)
        idx = np.flatnonzero(mask)
        if not len(idx):
            return None
        first = idx[: _ROWS_SHOWN.get()]
        key = [k for k in self.schema.key if k in self.raw.columns and k not in show][:1]
        shown = [c for c in key + show if c in self.raw.columns]
        examples = tuple({c: _plain(self.raw[c].iloc[i]) for c in shown} for i in first)
        n = len(idx)
        return Problem(
            rule,
            f"{n} row{'s' if n != 1 else ''}: {message}",
            file=self.file.name,
            table=self.name,
            column=column,
            count=n,
            rows=tuple(int(i) + (2 if self.fmt == "csv" else 0) for i in self.raw.index[first]),
            row_kind="line" if self.fmt == "csv" else "row",
            examples=examples,
        )


def _type_table(
    schema: TableSchema, file: Path, fmt: str, raw: pd.DataFrame, problems: list[Problem]
) -> _Frame:
    if fmt == "parquet":
        raw = raw.reset_index(drop=True)  # the index says where a row is in the file
    frame = _Frame(schema, file, fmt, raw)
    extras = [c for c in raw.columns if c not in schema.column_names]
    for col in schema.columns:
        if col.name not in raw.columns:
            if not col.optional:
                problems.append(_missing_column(frame, col, extras))
            s = pd.Series(pd.NA, index=raw.index)
            frame.typed[col.name], _ = _convert(s, col)
            frame.bad[col.name] = np.zeros(len(raw), dtype=bool)
            continue
        values = raw[col.name]
        if fmt == "parquet" and pd.api.types.is_string_dtype(values):
            values = values.mask(values == "")  # empty text means missing, as in CSV
        typed, bad = _convert(values, col)
        frame.typed[col.name], frame.bad[col.name] = typed, bad
    return frame


def _missing_column(frame: _Frame, col: Column, extras: list[str]) -> Problem:
    by_lower = {e.strip().lower(): e for e in extras}
    guess = by_lower.get(col.name) or next(
        iter(difflib.get_close_matches(col.name, extras, n=1, cutoff=0.6)), None
    )
    hint = (
        f"; the file has {guess!r} - did you mean {col.name!r}? (rename {guess!r} to {col.name!r})"
        if guess
        else f"; the file has {', '.join(map(repr, frame.raw.columns))}"
    )
    return Problem(
        "missing_column",
        f"required column {col.name!r} is missing{hint}",
        file=frame.file.name,
        table=frame.name,
        column=col.name,
    )


def _convert(values: pd.Series, col: Column) -> tuple[pd.Series, np.ndarray]:
    """Type one column; return it and a mask of the non-empty values that did not parse."""
    present = values.notna().to_numpy()
    if col.kind in ("id", "text", "enum"):
        typed = _to_str(values)
    elif col.kind in ("float", "int"):
        typed = _to_number(values)
        ok = np.isfinite(typed.to_numpy(dtype="float64", na_value=np.nan))
        if col.kind == "int":
            v = np.where(ok, typed.to_numpy(dtype="float64", na_value=0.0), 0.0)
            ok &= (np.mod(v, 1) == 0) & (np.abs(v) <= MAX_WHOLE_NUMBER)
        typed = typed.where(ok)
    elif col.kind == "timestamp":
        typed = _to_timestamp(values)
    else:  # pragma: no cover - the schema only uses the kinds above
        raise ValueError(f"unknown column kind {col.kind!r}")
    bad = present & typed.isna().to_numpy()
    return typed, bad


def _to_str(values: pd.Series) -> pd.Series:
    if pd.api.types.is_float_dtype(values):
        v = values.dropna()
        if (v == np.floor(v)).all():  # ids stored as 1.0 in Parquet are "1", not "1.0"
            values = values.astype("Int64")
    return values.astype("str")


def _to_number(values: pd.Series) -> pd.Series:
    if pd.api.types.is_bool_dtype(values):
        return pd.Series(np.nan, index=values.index, dtype="float64")  # True is not an amount
    if pd.api.types.is_numeric_dtype(values):
        return values.astype("float64")
    arr = _arrow(values)
    if arr is not None:
        try:  # fast path: every value parses; else pandas finds the bad ones below
            floats = pc.cast(arr, pa.float64()).to_numpy(zero_copy_only=False)
            return pd.Series(floats, index=values.index, dtype="float64")
        except pa.ArrowInvalid:
            pass
    return pd.to_numeric(values, errors="coerce").astype("float64")


def _to_timestamp(values: pd.Series) -> pd.Series:
    """ISO 8601 text or datetimes -> tz-naive UTC datetime64[ns]; naive input is UTC."""
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        ts = values.dt.tz_convert("UTC").dt.tz_localize(None)
    elif pd.api.types.is_datetime64_dtype(values):
        ts = values
    elif pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        ts = pd.Series(pd.NaT, index=values.index, dtype="datetime64[ns]")
    else:
        ts = pd.to_datetime(values, format="ISO8601", utc=True, errors="coerce")
        ts = ts.dt.tz_localize(None)
    ts = ts.where((ts >= _TS_MIN) & (ts < _TS_MAX))
    return ts.astype("datetime64[ns]")


# -- rules --------------------------------------------------------------------------------------


def _check_rows(frame: _Frame, now: pd.Timestamp, problems: list[Problem]) -> None:
    """The rules one table can check on its own, column by column."""
    add = _adder(problems)
    present = set(frame.raw.columns)
    for name in frame.raw.columns:  # contract and extra columns alike: every text cell
        values = frame.raw[name]
        if pd.api.types.is_object_dtype(values) or pd.api.types.is_string_dtype(values):
            nul = values.astype("str").str.contains("\x00", regex=False) & values.notna()
            add(
                frame.problem(
                    "nul_byte",
                    nul,
                    f"{name} contains a NUL byte (\\x00), which no text value may hold: "
                    "remove it from the export",
                    str(name),
                    [str(name)],
                )
            )
    for col in frame.schema.columns:
        if col.name not in present:
            continue
        typed, bad = frame.typed[col.name], frame.bad[col.name]
        name = col.name
        if col.kind == "timestamp":
            add(
                frame.problem(
                    "unparseable_timestamp",
                    bad,
                    f"{name} is not an ISO 8601 timestamp (e.g. 2026-03-01 or "
                    "2026-03-01T09:30:00+01:00)",
                    name,
                    [name],
                )
            )
        elif col.kind in ("float", "int"):
            what = "a whole number" if col.kind == "int" else "a number"
            big = np.zeros(len(bad), dtype=bool)
            if col.kind == "int" and bad.any():
                number = _to_number(frame.raw[col.name]).abs().to_numpy(na_value=np.nan)
                big = bad & np.isfinite(number) & (number > MAX_WHOLE_NUMBER)
                add(
                    frame.problem(
                        "too_large",
                        big,
                        f"{name} is too large (a whole number up to {MAX_WHOLE_NUMBER:,})",
                        name,
                        [name],
                    )
                )
            add(frame.problem("wrong_type", bad & ~big, f"{name} is not {what}", name, [name]))
        if not col.nullable:
            empty = typed.isna().to_numpy() & ~bad
            add(frame.problem("empty_required", empty, f"{name} is empty", name, [name]))
        if col.allowed is not None:
            outside = typed.notna() & ~typed.isin(col.allowed)
            allowed = ", ".join(col.allowed)
            add(
                frame.problem(
                    "not_allowed", outside, f"{name} is not one of ({allowed})", name, [name]
                )
            )
        if col.non_negative:
            add(frame.problem("negative", typed < 0, f"{name} is negative", name, [name]))
        if col.kind == "timestamp" and not col.future_ok:
            add(
                frame.problem(
                    "future_timestamp",
                    typed > now,
                    f"{name} is in the future (after {now.isoformat()} UTC)",
                    name,
                    [name],
                )
            )
    if frame.name == "contacts" and "timezone" in present:
        tz = frame.typed["timezone"]
        known = {z for z in tz.dropna().unique() if _is_iana(z)}
        add(
            frame.problem(
                "bad_timezone",
                tz.notna() & ~tz.isin(known),
                "timezone is not an IANA time zone name (e.g. Europe/Paris, America/New_York)",
                "timezone",
                ["timezone"],
            )
        )
    key = list(frame.schema.key)
    if set(key) <= present and not _surely_unique(frame.typed[key[0]], len(key)):
        keys = pd.DataFrame({k: frame.typed[k] for k in key})
        dup = keys.duplicated(keep=False) & keys.notna().all(axis=1)
        add(
            frame.problem(
                "duplicate_key",
                dup,
                f"{_key_label(key)} is not unique: each must appear once",
                ", ".join(key),
                key,
            )
        )


def _check_references(frames: dict[str, _Frame], problems: list[Problem]) -> None:
    """Ids must point at rows that exist, when the referenced table is there to check."""
    add = _adder(problems)
    for frame in frames.values():
        for col in frame.schema.columns:
            if col.references is None or col.name not in frame.raw.columns:
                continue
            parent_table, parent_col = col.references
            parent = frames.get(parent_table)
            if parent is None or parent_col not in parent.raw.columns:
                continue  # optional parent absent: nothing to check against
            child = frame.typed[col.name]
            unknown = child.notna().to_numpy() & ~_isin(child, parent.typed[parent_col])
            add(
                frame.problem(
                    "unknown_reference",
                    unknown,
                    f"{col.name} is not a {parent_col} in {parent_table} ({parent.file.name})",
                    col.name,
                    [col.name],
                )
            )


def _check_deals(frame: _Frame | None, problems: list[Problem]) -> None:
    if frame is None or not {"status", "closed_at"} <= set(frame.raw.columns):
        return
    add = _adder(problems)
    status, closed = frame.typed["status"], frame.typed["closed_at"]
    # An unparseable closed_at is already reported; don't call it "without date" too.
    no_date = closed.isna().to_numpy() & ~frame.bad["closed_at"]
    add(
        frame.problem(
            "closed_without_date",
            status.isin(["won", "lost"]).to_numpy() & no_date,
            "a won or lost deal has no closed_at",
            "closed_at",
            ["status", "closed_at"],
        )
    )
    add(
        frame.problem(
            "open_with_close_date",
            (status == "open") & closed.notna(),
            "an open deal has a closed_at (empty it, or set status to won or lost)",
            "closed_at",
            ["status", "closed_at"],
        )
    )


def _check_time_order(frames: dict[str, _Frame], problems: list[Problem]) -> None:
    add = _adder(problems)
    for table, start, end, rule in TIME_ORDER:
        frame = frames.get(table)
        if frame is None or not {start, end} <= set(frame.raw.columns):
            continue
        before = frame.typed[end] < frame.typed[start]
        add(frame.problem(rule, before, f"{end} is before {start}", end, [start, end]))


# -- helpers ------------------------------------------------------------------------------------


def _adder(problems: list[Problem]):
    def add(p: Problem | None) -> None:
        if p is not None:
            problems.append(p)

    return add


def _arrow(values: pd.Series) -> pa.Array | pa.ChunkedArray | None:
    """The Arrow data behind a ``str`` column (zero-copy), or None for other columns."""
    if isinstance(values.dtype, pd.StringDtype) and values.dtype.storage == "pyarrow":
        return pa.array(values.array)
    return None


def _isin(values: pd.Series, allowed: pd.Series) -> np.ndarray:
    """``values.isin(allowed)`` for big id columns: pandas builds one Python object per
    allowed id for Arrow strings, pyarrow's hash join does not."""
    left, right = _arrow(values), _arrow(allowed)
    if left is None or right is None:
        return values.isin(allowed.dropna().unique()).to_numpy()
    value_set = pc.drop_null(pc.unique(right))
    if isinstance(value_set, pa.ChunkedArray):
        value_set = value_set.combine_chunks()
    hit = pc.is_in(left, value_set=value_set.cast(left.type))
    return np.asarray(hit.to_numpy(zero_copy_only=False), dtype=bool)


def _surely_unique(first_key: pd.Series, key_width: int) -> bool:
    """Cheap proof of "no duplicate keys" for single-column keys (the common case)."""
    arr = _arrow(first_key)
    if key_width != 1 or arr is None:
        return False
    return pc.count_distinct(arr, mode="all").as_py() == len(arr)


def _key_label(key: list[str]) -> str:
    return key[0] if len(key) == 1 else f"({', '.join(key)})"


def _is_iana(name: str) -> bool:
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


def _as_utc_naive(now: datetime | str | None) -> pd.Timestamp:
    ts = pd.Timestamp.now(tz="UTC") if now is None else pd.Timestamp(now)
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    return ts


def _plain(value: Any) -> Any:
    """A value as JSON can carry it: None for missing, ISO text for times, Python scalars."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    if isinstance(value, pd.Timestamp | datetime):
        return value.isoformat()
    if isinstance(value, np.generic):
        return value.item()
    return value


def _iso(ts: Any) -> str | None:
    return None if ts is None or pd.isna(ts) else pd.Timestamp(ts).isoformat()
