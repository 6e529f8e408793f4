"""Reading a history folder: find each contract table's file, read it, type its columns.

:func:`discover` finds one CSV/Parquet file per contract table (and says which files look
like a table but are misnamed); :func:`read_table` reads one with every value as text, so
``007`` stays ``007``; :func:`type_table` types each contract column and remembers which
values did not parse, in a :class:`TypedTable`. The rules that judge the typed tables are in
:mod:`salespilot.features.validation_rules`; :mod:`salespilot.features.loader` runs both.
Everything is vectorised pandas/pyarrow, so a table of millions of activities reads in seconds.
"""

from __future__ import annotations

import csv
import difflib
import gzip
import logging
from collections.abc import Iterator
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
import pyarrow.parquet as pq

from salespilot.features.schema import REQUIRED_TABLES, TABLES, Column, TableSchema
from salespilot.features.validation import MAX_EXAMPLES, Problem

logger = logging.getLogger(__name__)

FORMATS = {".csv": "csv", ".csv.gz": "csv", ".parquet": "parquet", ".pq": "parquet"}
# Timestamps outside what datetime64[ns] can hold are reported, not silently wrapped.
_TS_MIN = pd.Timestamp("1678-01-01")
_TS_MAX = pd.Timestamp("2262-01-01")


# Whole numbers are read through float64: beyond 2**53 they are no longer exact (and beyond
# 2**63 they do not fit the integer column), so they are reported as too large.
MAX_WHOLE_NUMBER = 2**53


# How many offending rows a Problem carries; find_all_problems lifts the limit.
ROWS_SHOWN: ContextVar[int | None] = ContextVar("rows_shown", default=MAX_EXAMPLES)


def _split_name(p: Path) -> tuple[str, str | None]:
    """``Reps.CSV`` -> ("reps", "csv"); files of other formats -> (name, None)."""
    lower = p.name.lower()
    for suffix, fmt in sorted(FORMATS.items(), key=lambda kv: -len(kv[0])):
        if lower.endswith(suffix):
            return lower[: -len(suffix)], fmt
    return lower, None


def discover(folder: Path, problems: list[Problem]) -> dict[str, tuple[Path, str]]:
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


def read_table(
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


def read_batches(file: Path, fmt: str, rows: int) -> Iterator[pa.RecordBatch]:
    """A table file's rows as :func:`read_table` reads them (CSV: every value as text, null
    only when empty), about ``rows`` at a time and in file order, for a table too big to
    hold whole. Bad CSV lines raise :class:`pyarrow.ArrowInvalid`: reading the file whole
    reports them."""
    if fmt == "parquet":
        yield from pq.ParquetFile(file).iter_batches(batch_size=rows)
        return
    opener = gzip.open if file.name.lower().endswith(".gz") else open
    with opener(file, "rt", encoding="utf-8-sig", newline="") as f:
        header = next(csv.reader(f), None) or []
    convert = pa_csv.ConvertOptions(
        column_types=dict.fromkeys(header, pa.string()),
        strings_can_be_null=True,
        null_values=[""],
        quoted_strings_can_be_null=True,
    )
    # about 100 bytes a row: blocks of ``rows`` rows
    read = pa_csv.ReadOptions(block_size=max(1 << 20, min(rows * 100, 1 << 30)))
    with pa_csv.open_csv(file, read_options=read, convert_options=convert) as reader:
        for batch in reader:
            if batch.num_columns > 1 and batch.num_rows:  # empty lines: read_table drops them
                empty = pc.is_null(batch.column(0))
                for column in batch.columns[1:]:
                    empty = pc.and_(empty, pc.is_null(column))
                batch = batch.filter(pc.invert(empty))
            yield batch


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


@dataclass
class TypedTable:
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
        first = idx[: ROWS_SHOWN.get()]
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


def type_table(
    schema: TableSchema, file: Path, fmt: str, raw: pd.DataFrame, problems: list[Problem]
) -> TypedTable:
    if fmt == "parquet":
        raw = raw.reset_index(drop=True)  # the index says where a row is in the file
    frame = TypedTable(schema, file, fmt, raw)
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


def _missing_column(frame: TypedTable, col: Column, extras: list[str]) -> Problem:
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
        typed = to_str(values)
    elif col.kind in ("float", "int"):
        typed = to_number(values)
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


def to_str(values: pd.Series) -> pd.Series:
    if pd.api.types.is_float_dtype(values):
        v = values.dropna()
        if (v == np.floor(v)).all():  # ids stored as 1.0 in Parquet are "1", not "1.0"
            values = values.astype("Int64")
    return values.astype("str")


def to_number(values: pd.Series) -> pd.Series:
    if pd.api.types.is_bool_dtype(values):
        return pd.Series(np.nan, index=values.index, dtype="float64")  # True is not an amount
    if pd.api.types.is_numeric_dtype(values):
        return values.astype("float64")
    arr = arrow_data(values)
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


def arrow_data(values: pd.Series) -> pa.Array | pa.ChunkedArray | None:
    """The Arrow data behind a ``str`` column (zero-copy), or None for other columns."""
    if isinstance(values.dtype, pd.StringDtype) and values.dtype.storage == "pyarrow":
        return pa.array(values.array)
    return None


def _plain(value: Any) -> Any:
    """A value as JSON can carry it: None for missing, ISO text for times, Python scalars."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    if isinstance(value, pd.Timestamp | datetime):
        return value.isoformat()
    if isinstance(value, np.generic):
        return value.item()
    return value
