"""A history folder cut into account groups without ever holding its big tables whole.

The big tables (:data:`SPLIT_TABLES`: activities, subscriptions) are read in batches of
:data:`BATCH_ROWS` rows, twice; the small ones (reps, accounts, contacts, deals, stage
changes, targets), which every group keeps whole, are loaded once.

* :func:`scan` types each batch as :func:`~salespilot.features.loader.load_history` types
  the whole table and keeps what the groups need of the whole, a few columns each: the
  account pairs the activities tie (one group for both,
  :func:`~salespilot.features.partitions.groups_of`), the last event, the first activity,
  everyone's outbound calls, the population's contact attempts, and each row's hash, so
  the history's :meth:`~salespilot.features.history.History.content_hash` comes out as if
  it had been loaded whole.
* :func:`write_groups` writes each group's history folder: its rows of the big tables as
  read (with ``_row``, the row's number in the whole table), one file per table appended
  batch after batch, and links to the small tables' files.
* :func:`cross_account` gives the figures that cross accounts on a grid
  (:class:`~salespilot.features.history.CrossAccount`), and writes each group's attempts'
  population rates beside its folder.
* :func:`load_group` loads one group's folder (validated by the loader) as
  :func:`~salespilot.features.partitions.history_slice` cuts it from the whole history: the
  same rows, value for value.

Not checked across groups: an activity or subscription id used twice in two groups (each
group's loader checks its own).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from salespilot.features.history import CrossAccount, History, hash_table, row_hashes
from salespilot.features.schema import TABLES

#: The tables cut by account; every group keeps the others whole.
SPLIT_TABLES = ("activities", "subscriptions")
#: Rows read at a time from a big table.
BATCH_ROWS = 1_000_000
#: The column a group's rows carry: their row number in the whole table.
ROW = "_row"
#: Rows of attempts whose population rates are looked up at a time.
QUERY_ROWS = 2_000_000
#: Narrower types for the kept attempt columns (the population's keys read them as int64).
_ATTEMPT_DTYPES = {"local_hour": np.int8, "local_weekday": np.int8, "account_code": np.int32}
#: The attempt columns the population's rates read.
_ATTEMPT_COLUMNS = [
    "as_of",
    "known_at",
    "label_success",
    "channel",
    "local_hour",
    "local_weekday",
    "account_code",
]


@dataclass
class Scan:
    """What :func:`scan` keeps of a history folder: the small tables and a few columns of
    the big ones."""

    folder: Path
    sources: dict[str, tuple[Path, str]]
    #: the small tables, typed and validated, and the big ones' columns with no rows
    small: History
    n_groups: int
    #: each account's group (accounts table order)
    groups: np.ndarray
    observed_until: pd.Timestamp
    history_hash: str
    rows: dict[str, int]
    first_activity_ns: int
    #: everyone's outbound calls: when (int64 ns) and connected (0/1)
    calls: pd.DataFrame
    #: every contact attempt: its time, when its outcome is known, label, channel, local hour
    #: and weekday, account row and activity row
    attempts: pd.DataFrame | None


def source_rows(folder: str | Path) -> dict[str, int]:
    """Rows of each big table of the folder: a Parquet file's count, a CSV file's size over
    100 bytes (a cheap estimate, to choose how many groups)."""
    from salespilot.features.reading import discover

    out: dict[str, int] = {}
    if not Path(folder).is_dir():
        return out
    for name, (file, fmt) in discover(Path(folder), []).items():
        if name in SPLIT_TABLES:
            size = pq.ParquetFile(file).metadata.num_rows if fmt == "parquet" else None
            out[name] = size if size is not None else file.stat().st_size // 100
    return out


def _typed(name: str, file: Path, fmt: str, raw: pd.DataFrame) -> pd.DataFrame:
    """One batch typed as the loader types the whole table (its problems are the group
    loaders' to report)."""
    from salespilot.features.reading import type_table

    return type_table(TABLES[name], file, fmt, raw, []).result()


def _small_files(folder: Path, big: dict[str, tuple[Path, str]]) -> list[Path]:
    skip = {file for file, _ in big.values()}
    return [p for p in sorted(folder.iterdir()) if p.is_file() and p not in skip]


def _link_small(folder: Path, big: dict[str, tuple[Path, str]], into: Path) -> None:
    into.mkdir(parents=True, exist_ok=True)
    for p in _small_files(folder, big):
        link = into / p.name
        if not link.exists():
            os.symlink(p.resolve(), link)


def scan(folder: str | Path, n_groups: int, *, observed_until: object | None = None) -> Scan:
    """Read the folder's small tables whole and its big ones batch by batch (see module)."""
    from salespilot.features.accounts import BIG, first_activity_ns
    from salespilot.features.contacts import _attempts_frame, attempt_rows
    from salespilot.features.interactions import is_in
    from salespilot.features.loader import load_history
    from salespilot.features.partitions import groups_of, tie_pairs
    from salespilot.features.pit import last_event, to_ns
    from salespilot.features.reading import discover, read_batches, read_table
    from salespilot.features.validation import HistoryValidationError

    folder = Path(folder)
    problems: list = []
    sources = discover(folder, problems) if folder.is_dir() else {}
    if problems:
        raise HistoryValidationError(problems, source=str(folder))
    big = {t: sources[t] for t in SPLIT_TABLES if t in sources}
    with tempfile.TemporaryDirectory(prefix="salespilot-small-") as view:
        _link_small(folder, big, Path(view))
        small = load_history(view, observed_until=observed_until)
    small = replace(small, source=folder)

    ties, lasts, calls, attempts = [], [], [], []
    first, rows = BIG, {}
    hashes: dict[str, list[tuple[pa.Table, np.ndarray, np.ndarray]]] = {}
    empty: dict[str, pd.DataFrame] = {}
    for name, (file, fmt) in big.items():
        key = list(TABLES[name].key)
        offset = 0
        hashes[name] = []
        for batch in read_batches(file, fmt, BATCH_ROWS):
            typed = _typed(name, file, fmt, batch.to_pandas())
            n = len(typed)
            at = np.arange(offset, offset + n, dtype=np.int64)
            empty.setdefault(name, typed.iloc[:0])
            hashes[name].append((pa.table({k: typed[k] for k in key}), row_hashes(typed)))
            piece = replace(small, **{name: typed})
            for col in TABLES[name].event_timestamp_columns:
                if col in typed.columns and n and pd.notna(v := typed[col].max()):
                    lasts.append(pd.Timestamp(v))
            if name == "activities" and n:
                ties.append(tie_pairs(piece))
                first = min(first, first_activity_ns(piece))
                every = is_in(typed["channel"], "call") & is_in(typed["direction"], "outbound")
                calls.append(
                    pd.DataFrame(
                        {
                            "at": to_ns(typed["occurred_at"])[every],
                            "connected": is_in(typed["outcome"], "connected")[every],
                        }
                    )
                )
                tried = _attempts_frame(piece)[_ATTEMPT_COLUMNS]
                tried["channel"] = tried["channel"].astype("category")
                for col, dtype in _ATTEMPT_DTYPES.items():
                    tried[col] = tried[col].astype(dtype)
                tried[ROW] = at[attempt_rows(typed)]
                attempts.append(tried)
            offset += n
        rows[name] = offset
        if name not in empty:  # no rows at all: the file read whole is cheap
            raw = read_table(file, fmt, TABLES[name], [])
            empty[name] = _typed(name, file, fmt, raw if raw is not None else pd.DataFrame())
    shaped = replace(small, **empty)

    groups = groups_of(small.accounts, n_groups, ties)
    if small.observed_until is not None:
        end = small.observed_until
    else:
        with contextlib.suppress(ValueError):
            lasts.append(last_event(small))
        if not lasts:
            raise ValueError("the history holds no timestamped events")
        end = max(lasts)

    h = hashlib.sha256()
    for name in TABLES:
        if name in hashes:
            parts = hashes.pop(name)
            keys = pa.concat_tables([p[0] for p in parts]) if parts else None  # no copy
            values = np.concatenate([p[1] for p in parts]) if parts else np.empty(0, np.uint64)
            del parts
            if keys is not None:
                # a stable sort: rows of equal keys stay in file order, as in content_hash
                sort = [(k, "ascending") for k in keys.column_names]
                order = pc.sort_indices(keys, sort_keys=sort).to_numpy()
                del keys
                values = values[order]
                del order
            hash_table(h, name, list(empty[name].columns), values)
        elif (df := small.table(name)) is not None:
            ordered = df.sort_values(list(TABLES[name].key), kind="stable").reset_index(drop=True)
            hash_table(h, name, list(df.columns), row_hashes(ordered))

    return Scan(
        folder=folder,
        sources=sources,
        small=replace(shaped, observed_until=end),
        n_groups=int(n_groups),
        groups=groups,
        observed_until=end,
        history_hash=h.hexdigest()[:16],
        rows=rows,
        first_activity_ns=int(first),
        calls=(
            pd.concat(calls, ignore_index=True)
            if calls
            else pd.DataFrame({"at": np.empty(0, np.int64), "connected": np.empty(0, bool)})
        ),
        attempts=pd.concat(attempts, ignore_index=True) if attempts else None,
    )


def group_of_rows(scan_: Scan, account_codes: np.ndarray) -> np.ndarray:
    """The group of rows by their account's row (-1, an unknown account: group 0, whose
    loader reports it)."""
    codes = np.asarray(account_codes, dtype=np.int64)
    return np.where(codes >= 0, scan_.groups[np.where(codes >= 0, codes, 0)], 0)


def write_groups(scan_: Scan, out: str | Path) -> list[Path]:
    """Write each group's history folder under ``out`` (``group-007``): its rows of each big
    table as read, in file order with their ``_row``, appended batch by batch; links to the
    small tables' files. Returns the folders."""
    from salespilot.features.reading import read_batches, to_str

    out = Path(out)
    big = {t: scan_.sources[t] for t in SPLIT_TABLES if t in scan_.sources}
    folders = [out / f"group-{g:03d}" for g in range(scan_.n_groups)]
    for f in folders:
        _link_small(scan_.folder, big, f)
    ids = pd.Index(scan_.small.accounts["account_id"].to_numpy(dtype=object))
    for name, (file, fmt) in big.items():
        writers: list[pq.ParquetWriter] = []
        offset = 0
        try:
            for batch in read_batches(file, fmt, BATCH_ROWS):
                n = batch.num_rows
                batch = batch.append_column(ROW, pa.array(np.arange(offset, offset + n)))
                batch = batch.replace_schema_metadata(None)
                if not writers:
                    writers = [
                        pq.ParquetWriter(f / f"{name}.parquet", batch.schema) for f in folders
                    ]
                if "account_id" in batch.schema.names:
                    raw = batch.column("account_id").to_pandas()
                    if fmt == "parquet" and pd.api.types.is_string_dtype(raw):
                        raw = raw.mask(raw == "")
                    code = ids.get_indexer(to_str(raw).to_numpy(dtype=object))
                else:
                    code = np.full(n, -1)
                group = group_of_rows(scan_, code)
                for g in np.unique(group):
                    writers[g].write_batch(batch.filter(pa.array(group == g)))
                offset += n
        finally:
            for w in writers:
                w.close()
        if not writers:  # a table without rows: every group has it without rows
            for f in folders:
                link = f / file.name
                if not link.exists():
                    os.symlink(file.resolve(), link)
    return folders


def cross_account(
    scan_: Scan, grid: pd.DatetimeIndex, folders: list[Path], *, attempts: bool = True
) -> CrossAccount:
    """The figures that cross accounts on ``grid`` (as
    :func:`~salespilot.features.partitions.cross_account_figures` of the whole history);
    each group's attempts' population rates go to ``population.parquet`` beside its folder
    (read by :func:`load_group`), not into the returned object."""
    from salespilot.features.contacts import AttemptRates
    from salespilot.features.pit import EventIndex, as_of_index

    t = as_of_index(grid).asi8
    calls = scan_.calls
    everyone = EventIndex(
        None, calls["at"].to_numpy(), {"connected": calls["connected"].to_numpy(np.int32)}
    ).at(None, t)
    if attempts and scan_.attempts is not None:
        tried = scan_.attempts
        population = AttemptRates.of_population(tried)
        rates = pd.concat(
            [
                population.population(tried.iloc[lo : lo + QUERY_ROWS])
                for lo in range(0, len(tried), QUERY_ROWS)
            ]
            or [population.population(tried)],
            ignore_index=True,
        )
        del population
        rates[ROW] = tried[ROW].to_numpy()
        group = group_of_rows(scan_, tried["account_code"].to_numpy())
        order = np.argsort(group, kind="stable")
        cuts = np.searchsorted(group[order], np.arange(scan_.n_groups + 1))
        for g, f in enumerate(folders):
            mine = rates.iloc[order[cuts[g] : cuts[g + 1]]].reset_index(drop=True)
            mine.to_parquet(_population_file(f), index=False)
    return CrossAccount(
        calls_before=pd.DataFrame(
            {"calls": everyone.count(), "connected": everyone.sum("connected")}, index=t
        ),
        first_activity_ns=scan_.first_activity_ns,
    )


def _population_file(folder: Path) -> Path:
    return folder.parent / f"{folder.name}.population.parquet"


def load_group(
    folder: str | Path,
    cross: CrossAccount,
    observed_until: pd.Timestamp,
    *,
    stated_until: object | None = None,
) -> tuple[History, np.ndarray]:
    """One group's history (validated by the loader) as the whole history's slice, and its
    activities' rows in the whole (see :func:`~salespilot.features.partitions.history_slice`)."""
    from salespilot.features.loader import load_history

    folder = Path(folder)
    history = load_history(folder, observed_until=stated_until)
    changes: dict[str, object] = {"observed_until": observed_until}
    rows = np.empty(0, dtype=np.int64)
    for name in SPLIT_TABLES:
        df = history.table(name)
        if df is not None and ROW in df.columns:
            if name == "activities":
                rows = df[ROW].to_numpy(dtype=np.int64)
            changes[name] = df.drop(columns=ROW)
    population = None
    file = _population_file(folder)
    if file.exists() and history.activities is not None:
        rates = pd.read_parquet(file)
        at = pd.Index(rows).get_indexer(rates.pop(ROW).to_numpy())
        ids = history.activities["activity_id"].to_numpy(dtype=object)
        population = rates.set_axis(pd.Index(ids[at]), axis=0)
    changes["cross_account"] = replace(cross, attempt_population=population)
    return replace(history, **changes), rows
