"""The contract's validation rules, over tables already read and typed.

Each ``check_*`` function looks at the :class:`~salespilot.features.reading.TypedTable`
objects of one history and appends a :class:`~salespilot.features.validation.Problem` per
broken rule (the rule ids are listed in :mod:`salespilot.features.validation`): the rules of
one table's columns (:func:`check_rows`), references between tables, deal status against its
close date, and time order. They read no file; :mod:`salespilot.features.reading` does.
"""

from __future__ import annotations

import zoneinfo

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from salespilot.features.reading import MAX_WHOLE_NUMBER, TypedTable, arrow_data, to_number
from salespilot.features.schema import TIME_ORDER
from salespilot.features.validation import Problem


def check_rows(frame: TypedTable, now: pd.Timestamp, problems: list[Problem]) -> None:
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
                number = to_number(frame.raw[col.name]).abs().to_numpy(na_value=np.nan)
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


def check_references(frames: dict[str, TypedTable], problems: list[Problem]) -> None:
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


def check_deals(frame: TypedTable | None, problems: list[Problem]) -> None:
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


def check_time_order(frames: dict[str, TypedTable], problems: list[Problem]) -> None:
    add = _adder(problems)
    for table, start, end, rule in TIME_ORDER:
        frame = frames.get(table)
        if frame is None or not {start, end} <= set(frame.raw.columns):
            continue
        before = frame.typed[end] < frame.typed[start]
        add(frame.problem(rule, before, f"{end} is before {start}", end, [start, end]))


def _adder(problems: list[Problem]):
    def add(p: Problem | None) -> None:
        if p is not None:
            problems.append(p)

    return add


def _isin(values: pd.Series, allowed: pd.Series) -> np.ndarray:
    """``values.isin(allowed)`` for big id columns: pandas builds one Python object per
    allowed id for Arrow strings, pyarrow's hash join does not."""
    left, right = arrow_data(values), arrow_data(allowed)
    if left is None or right is None:
        return values.isin(allowed.dropna().unique()).to_numpy()
    value_set = pc.drop_null(pc.unique(right))
    if isinstance(value_set, pa.ChunkedArray):
        value_set = value_set.combine_chunks()
    hit = pc.is_in(left, value_set=value_set.cast(left.type))
    return np.asarray(hit.to_numpy(zero_copy_only=False), dtype=bool)


def _surely_unique(first_key: pd.Series, key_width: int) -> bool:
    """Cheap proof of "no duplicate keys" for single-column keys (the common case)."""
    arr = arrow_data(first_key)
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
