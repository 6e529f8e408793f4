"""Apply a mapping to source tables: one pure step per column rule, no validation here.

Validation is the loader's job (the same rules and report as ``salespilot validate``); this
module only reshapes, and keeps for every output row where it came from (source, row number)
so a rejected row can be traced back to the user's own export.
"""

from __future__ import annotations

import calendar
import difflib
import hashlib
import logging
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from salespilot.features.mapping.model import (
    ROW_NUMBER,
    ColumnSpec,
    Condition,
    FromParts,
    Mapping,
    MappingError,
    TablePart,
)
from salespilot.features.mapping.sources import Source
from salespilot.features.schema import TABLES

logger = logging.getLogger(__name__)

# A time-zone offset follows a time of day ("10:00+02:00", "10:00:00Z"): the "-2018" that ends
# a day-first "01-02-2018" is a year, not an offset.
_OFFSET = re.compile(
    r"\d{1,2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?\s*(?:Z|UTC|[+-]\d{2}(?::?\d{2})?)$", re.I
)

_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}")


@dataclass
class MappedTable:
    """One contract table as the mapping produced it, with each row's origin."""

    name: str
    frame: pd.DataFrame
    origin: pd.DataFrame  # columns: source, source_row (aligned with frame)


@dataclass
class _Context:
    mapping: Mapping
    source: Source
    table: str
    notes: list[str] = field(default_factory=list)
    row_numbers: pd.Series | None = None  # the current part's rows in the user's own numbering


def map_tables(mapping: Mapping, source: Source) -> tuple[dict[str, MappedTable], list[str]]:
    """Build every mapped contract table from ``source``; returns the tables and notes for the user."""
    notes: list[str] = []
    out: dict[str, MappedTable] = {}
    for name, table in mapping.tables.items():
        ctx = _Context(mapping, source, name, notes)
        frames, origins = [], []
        for part in table.parts:
            frame, origin = _map_part(part, ctx)
            frames.append(frame)
            origins.append(origin)
        frame = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
        origin = pd.concat(origins, ignore_index=True) if len(origins) > 1 else origins[0]
        out[name] = MappedTable(name, frame.reset_index(drop=True), origin.reset_index(drop=True))
    return out, notes


def _read_part(part: TablePart, ctx: _Context) -> tuple[pd.DataFrame, pd.DataFrame]:
    if part.rows is not None:
        raw = pd.DataFrame(part.rows)
        label, first = "mapping rows", 1
    elif part.query is not None:
        raw = ctx.source.query(part.query)
        label, first = "query", 1
    else:
        assert part.source is not None
        raw = ctx.source.read(part.source, delimiter=part.delimiter or ctx.mapping.delimiter)
        label, first = part.source, ctx.source.first_row(part.source)
    origin = pd.DataFrame({"source": label, "source_row": range(first, first + len(raw))})
    return raw, origin


def _map_part(part: TablePart, ctx: _Context) -> tuple[pd.DataFrame, pd.DataFrame]:
    raw, origin = _read_part(part, ctx)
    _check_source_columns(part, raw, ctx)
    keep = _where(raw, part.where)
    raw, origin = raw[keep].reset_index(drop=True), origin[keep].reset_index(drop=True)
    ctx.row_numbers = origin["source_row"]

    schema = TABLES[ctx.table]
    out: dict[str, pd.Series] = {}
    for col in schema.column_names:
        if col in part.columns:
            out[col] = _evaluate(part.columns[col], raw, ctx, col)
        elif col in raw.columns:
            # Same name in the source: taken as is (an identity mapping needs no `columns:`).
            out[col] = _evaluate(ColumnSpec(column=col), raw, ctx, col)
        # else: left out, so validation reports the missing column with its usual message.
    for col, spec in part.columns.items():
        if col not in out:
            out[col] = _evaluate(spec, raw, ctx, col)
    if part.keep_extra:
        for col in raw.columns:
            if col not in out:
                out[col] = raw[col]
    frame = pd.DataFrame(out, index=raw.index)
    return frame, origin


def _check_source_columns(part: TablePart, raw: pd.DataFrame, ctx: _Context) -> None:
    """A misspelt source column is a mapping error, reported before anything is written."""
    needed = [c.column for c in part.where]
    for spec in part.columns.values():
        needed += spec.source_columns()
    missing = [c for c in dict.fromkeys(needed) if c not in raw.columns]
    if missing:
        have = [str(c) for c in raw.columns]
        hints = []
        for c in missing:
            close = difflib.get_close_matches(c, have, n=1)
            hints.append(f"{c!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        raise MappingError(
            f"{ctx.table} from {part.origin}: no source column {', '.join(hints)}; "
            f"the source has {have}"
        )


def _where(raw: pd.DataFrame, conditions: list[Condition]) -> pd.Series:
    keep = pd.Series(True, index=raw.index)
    for cond in conditions:
        col = raw[cond.column]
        if cond.is_null is not None:
            test = col.isna() if cond.is_null else col.notna()
        else:
            values = {_text(v) for v in (cond.in_ if cond.in_ is not None else cond.not_in or [])}
            hit = col.map(_text).isin(values) & col.notna()
            test = hit if cond.in_ is not None else ~hit
        keep &= test
    return keep


def _evaluate(spec: ColumnSpec, raw: pd.DataFrame, ctx: _Context, col: str) -> pd.Series:
    s = _origin(spec, raw, ctx)
    if spec.found_in is not None:
        s = _found_in(s, spec, ctx)
    if spec.values is not None:
        s = _map_values(s, spec.values)
    if spec.lookup is not None:
        s = _lookup(s, spec, ctx, col)
    if spec.fill is not None:
        s = s.where(s.notna(), spec.fill)
    kind = _kind(ctx.table, col, spec)
    if kind == "timestamp" or spec.moves_time:
        s = parse_timestamps(
            s,
            date_format=spec.date_format or ctx.mapping.date_format,
            dayfirst=spec.dayfirst if spec.dayfirst is not None else ctx.mapping.dayfirst,
            # a derived hour or weekday is the export's own wall clock, not UTC's
            timezone="UTC" if spec.derive else spec.timezone or ctx.mapping.timezone,
        )
        for offset, sign in ((spec.plus, 1), (spec.minus, -1)):
            if offset:
                s = _shift(s, offset, sign, raw, ctx, col)
        if spec.derive:
            s = _derive(s, spec.derive)
    elif kind in ("float", "int") and col not in TABLES[ctx.table].column_names:
        s = _numeric(s, ctx, col)
    return s


def _origin(spec: ColumnSpec, raw: pd.DataFrame, ctx: _Context) -> pd.Series:
    if spec.column is not None:
        return raw[spec.column]
    if spec.has_constant:
        return pd.Series([spec.constant] * len(raw), index=raw.index, dtype=object)
    if spec.id_from is not None:
        cols = [spec.id_from] if isinstance(spec.id_from, str) else spec.id_from
        style = spec.id_style or ctx.mapping.id_style
        return make_ids(raw[cols], style=style, prefix=spec.id_prefix)
    if spec.row_number:
        assert ctx.row_numbers is not None
        return (spec.id_prefix + ctx.row_numbers.astype(str)).set_axis(raw.index).astype(object)
    if spec.from_parts is not None:
        return _from_parts(spec.from_parts, raw)
    assert spec.coalesce is not None
    result = None
    for sub in spec.coalesce:
        s = _origin(sub, raw, ctx)
        if sub.values is not None:
            s = _map_values(s, sub.values)
        result = s if result is None else result.where(result.notna(), s)
    assert result is not None
    return result


_MONTHS = {
    name: i
    for i in range(1, 13)
    for name in (calendar.month_abbr[i].lower(), calendar.month_name[i].lower(), str(i))
}


def _from_parts(parts: FromParts, raw: pd.DataFrame) -> pd.Series:
    """ISO text ``YYYY-MM-DD[ HH:MM]`` from a row's parts (the timestamp parser reads it)."""

    def part(v: str | int | None) -> pd.Series:
        if isinstance(v, str):
            return raw[v].astype(object).map(lambda x: None if pd.isna(x) else str(x).strip())
        return pd.Series([None if v is None else str(v)] * len(raw), index=raw.index, dtype=object)

    if parts.date is not None:
        text = part(parts.date)
    else:
        year = pd.to_numeric(part(parts.year), errors="coerce")
        month = part(parts.month).str.lower().map(lambda m: _MONTHS.get(str(m).lstrip("0") or m))
        day = pd.to_numeric(part(parts.day), errors="coerce")
        ok = year.notna() & month.notna() & day.notna()
        text = pd.Series(None, index=raw.index, dtype=object)
        text[ok] = [
            f"{int(y):04d}-{int(m):02d}-{int(d):02d}"
            for y, m, d in zip(year[ok], month[ok], day[ok], strict=True)
        ]
    if parts.time is not None:
        clock = part(parts.time)
    elif parts.hour is not None:
        hour = pd.to_numeric(part(parts.hour), errors="coerce")
        clock = hour.map(lambda h: None if pd.isna(h) else f"{int(h):02d}:00")
    else:
        return text
    has = text.notna() & clock.notna()
    return text.where(~has, text + " " + clock.astype(str))


def _found_in(s: pd.Series, spec: ColumnSpec, ctx: _Context) -> pd.Series:
    """``"true"``/``"false"``: whether each value is a key of ``found_in.source``."""
    fi = spec.found_in
    assert fi is not None
    table = ctx.source.read(fi.source, delimiter=fi.delimiter or ctx.mapping.delimiter)
    if fi.key not in table.columns:
        close = difflib.get_close_matches(fi.key, [str(c) for c in table.columns], n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise MappingError(f"{ctx.table}: found_in {fi.source} has no column {fi.key!r}{hint}")
    keys = set(table[fi.key].dropna().map(_text))
    hit = s.notna() & s.map(_text, na_action="ignore").isin(keys)
    return hit.map({True: "true", False: "false"}).astype(object)


def _shift(
    s: pd.Series, offset: dict, sign: int, raw: pd.DataFrame, ctx: _Context, col: str
) -> pd.Series:
    """Timestamps moved by ``offset`` (unit -> a number, a source column of numbers, or
    ``row_number``: the row's number in the user's file)."""
    if not pd.api.types.is_datetime64_dtype(s.dtype):
        return s  # some values did not parse: validation reports them as they are
    out = s.copy()
    for unit, amount in offset.items():
        if amount == ROW_NUMBER:
            assert ctx.row_numbers is not None
            n = pd.Series(ctx.row_numbers.to_numpy(dtype="float64"), index=raw.index)
        elif isinstance(amount, str):
            n = _numeric(raw[amount], ctx, f"{col} ({unit} from {amount})")
        else:
            n = pd.Series(float(amount), index=raw.index)
        n = sign * n.astype("float64")
        if unit in ("years", "months"):
            moved = pd.Series(pd.NaT, index=s.index, dtype="datetime64[ns]")
            for value in n.dropna().unique():
                rows = n == value
                if value != int(value):
                    raise MappingError(f"{ctx.table}.{col}: {unit} must be whole numbers")
                moved[rows] = out[rows] + pd.DateOffset(**{unit: int(value)})
            out = moved
        else:
            out = out + pd.to_timedelta(n, unit=unit[0] if unit != "minutes" else "min")
    return out


def _derive(s: pd.Series, what: str) -> pd.Series:
    """A number from each timestamp: hour, weekday (Monday 0), day, month or year."""
    if not pd.api.types.is_datetime64_dtype(s.dtype):
        s = pd.to_datetime(s, errors="coerce")
    return getattr(s.dt, what).astype("float64")


def _kind(table: str, col: str, spec: ColumnSpec) -> str | None:
    if spec.type is not None:
        return spec.type
    schema = TABLES[table]
    return schema.column(col).kind if col in schema.column_names else None


def _text(v: Any) -> str:
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, float) and v.is_integer():
        return str(int(v))  # a SQL integer read as float still matches the key "3"
    return str(v)


def _map_values(s: pd.Series, values: dict[str, Any]) -> pd.Series:
    keys = s.map(_text, na_action="ignore")
    hit = keys.isin(list(values)) & s.notna()
    mapped = keys.map(values, na_action="ignore")
    return s.astype(object).where(~hit, mapped)


def _lookup(s: pd.Series, spec: ColumnSpec, ctx: _Context, col: str) -> pd.Series:
    assert spec.lookup is not None
    lk = spec.lookup
    table = ctx.source.read(lk.source, delimiter=ctx.mapping.delimiter)
    for c in (lk.key, lk.value):
        if c not in table.columns:
            raise MappingError(
                f"{ctx.table}.{col}: lookup table {lk.source!r} has no column {c!r}; "
                f"it has {list(table.columns)}"
            )
    keys = table[lk.key].map(_text, na_action="ignore")
    dupes = keys[keys.duplicated() & keys.notna()]
    if len(dupes):
        raise MappingError(
            f"{ctx.table}.{col}: lookup table {lk.source!r} has several rows for "
            f"{lk.key}={sorted(set(dupes))[:5]}"
        )
    table_map = dict(zip(keys, table[lk.value], strict=True))
    texts = s.map(_text, na_action="ignore")
    out = texts.map(table_map, na_action="ignore")
    missed = s.notna() & ~texts.isin(list(table_map))
    if missed.any():
        examples = sorted(set(texts[missed]))[:5]
        ctx.notes.append(
            f"{ctx.table}.{col}: {int(missed.sum())} values not found in "
            f"{lk.source}.{lk.key} (e.g. {examples}); add them to a `values:` map"
        )
    return out


def _numeric(s: pd.Series, ctx: _Context, col: str) -> pd.Series:
    num = pd.to_numeric(s, errors="coerce")
    bad = num.isna() & s.notna()
    if bad.any():
        ctx.notes.append(
            f"{ctx.table}.{col}: {int(bad.sum())} values are not numbers "
            f"(e.g. {sorted(set(s[bad].map(str)))[:5]}); they are left empty"
        )
    return num


def _slug(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")


def _hash(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:12]


def make_ids(names: pd.DataFrame, *, style: str = "slug", prefix: str = "") -> pd.Series:
    """Stable ids from name columns: the same name always gives the same id, on any machine.

    ``slug`` is readable ("Moses Frase" -> "moses-frase"); ``hash`` is opaque but never
    collides for names that differ only in punctuation. A name whose slug is empty (only
    symbols) gets its hash. A row with an empty name gets no id, so validation reports it.
    """
    empty = names.isna().any(axis=1)
    parts = [names[c].astype(object).map(_text, na_action="ignore") for c in names.columns]
    text = parts[0].str.cat(parts[1:], sep=" ") if len(parts) > 1 else parts[0]

    def one(t: str) -> str:
        if style == "hash":
            return prefix + _hash(t)
        return prefix + (_slug(t) or _hash(t))

    # Names repeat a lot (a rep on thousands of deals): build each distinct id once.
    distinct = text[~empty].unique()
    ids = text.map(dict(zip(distinct, map(one, distinct), strict=True)), na_action="ignore")
    return ids.astype(object).where(~empty, None)


def parse_timestamps(
    s: pd.Series, *, date_format: str | None, dayfirst: bool, timezone: str
) -> pd.Series:
    """Parse to tz-naive UTC. Values without an offset are in ``timezone``.

    A value that does not parse is kept as its raw text, so the loader's validation reports it
    (with its row) instead of the import turning it silently into an empty date.
    """
    if isinstance(s.dtype, pd.DatetimeTZDtype):
        return s.dt.tz_convert("UTC").dt.tz_localize(None)
    if pd.api.types.is_datetime64_dtype(s.dtype):
        return _localize(s, timezone)
    present = s.notna()
    if not present.any():
        return pd.Series(pd.NaT, index=s.index, dtype="datetime64[ns]")
    text = s.astype(object).where(present, None).map(str, na_action="ignore")
    aware = present & text.str.contains(_OFFSET, na=False)
    result = pd.Series(pd.NaT, index=s.index, dtype="datetime64[ns]")
    if aware.any():
        parsed = pd.to_datetime(text[aware], utc=True, errors="coerce", format="ISO8601")
        retry = parsed.isna()
        if retry.any():  # "01-02-2018 10:00+01:00": the file's own date format, or day-first
            parsed[retry] = _parse_aware(text[aware][retry], date_format, dayfirst)
        result[aware] = parsed.dt.tz_localize(None)
    naive = present & ~aware
    if naive.any():
        result[naive] = _localize(_parse_naive(text[naive], date_format, dayfirst), timezone)
    failed = present & result.isna()
    if failed.any():
        return result.astype(object).where(~failed, text)
    return result


def _parse_aware(text: pd.Series, date_format: str | None, dayfirst: bool) -> pd.Series:
    if date_format and "%z" in date_format:
        return pd.to_datetime(text, format=date_format, utc=True, errors="coerce")
    # year first ("2018-02-01 10:00 UTC") is never day-first, whatever the file says
    iso = text.str.match(_ISO_DATE)
    parsed = pd.Series(pd.NaT, index=text.index, dtype="datetime64[ns, UTC]")
    for rows, day_first in ((iso, False), (~iso, dayfirst)):
        if rows.any():
            parsed[rows] = pd.to_datetime(
                text[rows], format="mixed", dayfirst=day_first, utc=True, errors="coerce"
            )
    return parsed


def _parse_naive(text: pd.Series, date_format: str | None, dayfirst: bool) -> pd.Series:
    if date_format:
        return pd.to_datetime(text, format=date_format, errors="coerce")
    # ISO dates first: with dayfirst, dateutil would read 2017-01-03 as 1 March.
    iso = text.str.match(_ISO_DATE)
    parsed = pd.Series(pd.NaT, index=text.index, dtype="datetime64[ns]")
    if iso.any():
        parsed[iso] = pd.to_datetime(text[iso], format="ISO8601", errors="coerce")
    rest = ~iso
    if rest.any():
        parsed[rest] = pd.to_datetime(
            text[rest], format="mixed", dayfirst=dayfirst, errors="coerce"
        )
    return parsed


def _localize(s: pd.Series, timezone: str) -> pd.Series:
    s = s.astype("datetime64[ns]")
    if timezone == "UTC":
        return s
    # Ambiguous wall times (the repeated hour in autumn) are read as standard time.
    local = s.dt.tz_localize(timezone, ambiguous=False, nonexistent="shift_forward")
    return local.dt.tz_convert("UTC").dt.tz_localize(None)
