"""``build_features``: validate the history, build the three feature tables, persist them.

The work is cut by account: every account falls in one of a few groups (a hash of its id,
:mod:`salespilot.features.partitions`), and one task builds every table's rows of one group
from that group's slice of the history: its accounts' activities and subscriptions, the small
tables (reps, accounts, contacts, deals, stage changes) whole, since a rep's win rate and a
stage's typical dwell cross accounts. What else crosses accounts (everyone's call connect
rate, the population's answer rates, the first activity) is computed once from the whole
history first and travels with every slice, so the rows are, value for value, those of one
big build. With the Dask task runner the groups spread over a cluster and no worker holds
the whole activity history. Each group's parts are cached by Prefect on (history hash,
feature-set version, group, tables, dates), so an unchanged history is not rebuilt and a
changed one is.
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NONE as NO_CACHE

from salespilot.features.history import History
from salespilot.settings import Settings

#: Activities per account group on a Dask cluster: a group's slice, its indexes and its tables
#: fit a worker (about 5 GB at 3M activities beside 2M deals). Each group also loads and
#: indexes the small tables whole, so fewer, bigger groups cost less CPU.
ACTIVITIES_PER_GROUP = 3_000_000
#: On one machine (the thread runner) the groups share one process: cutting the history only
#: pays when it would not fit whole (about 1.2 GB per million activities built in one piece);
#: below this a second group costs half again the CPU (the demo's 1.3M: 44 s against 29 s).
LOCAL_ACTIVITIES_PER_GROUP = 10_000_000

#: How a table's rows are ordered in one big build (its parts are put back in that order).
_ROW_ORDER = {"deals": ["as_of", "_row"], "accounts": ["as_of", "_row"], "attempts": ["_row"]}

#: Attempts per batch of the assembled table: the attempts of activity rows
#: ``[k * ATTEMPT_BATCH, (k + 1) * ATTEMPT_BATCH)`` of the whole history, from every part.
ATTEMPT_BATCH = 1_000_000


def _batch_keys(table: str, frame: pd.DataFrame) -> np.ndarray:
    """Each row's batch of the assembled table (its parts' row groups): deals and accounts
    by as_of (int64 ns), attempts by ranges of activity rows. Batches follow the table's
    row order, so appending them in key order gives that order."""
    if table == "attempts":
        return frame["_row"].to_numpy(dtype=np.int64) // ATTEMPT_BATCH
    return frame["as_of"].to_numpy(dtype="datetime64[ns]").view(np.int64)


def _group_key(context: Any, parameters: dict[str, Any]) -> str:
    from salespilot.features.training_sets import FEATURE_SET_VERSION

    dates = parameters["dates"]
    return "-".join(
        [
            "features",
            parameters["history_hash"],
            FEATURE_SET_VERSION,
            f"group{parameters['group']}of{parameters['n_groups']}",
            ",".join(f"{table}:{horizon}" for table, horizon in parameters["plans"]),
            dates[0],
            dates[-1],
            str(len(dates)),
            str(Path(parameters["parts_dir"]).resolve()),
        ]
    )


@task(cache_policy=NO_CACHE)
def load_and_validate(data_dir: str) -> History:
    """Load the history; a bad file fails the flow with the validation report (no retry)."""
    from salespilot.features.loader import load_history

    return load_history(data_dir, observed_until=Settings().observed_until)


@task(cache_policy=NO_CACHE)
def prepare_groups(
    data_dir: str, n_groups: int, inputs_dir: str, tables: list[str] | None, as_of: str | None
) -> dict[str, Any]:
    """Cut the history into account groups without holding its big tables whole
    (:mod:`salespilot.features.group_inputs`): each group's history folder under
    ``inputs_dir``, the figures that cross accounts, the plan and the grid."""
    from salespilot.features import group_inputs
    from salespilot.features.training_sets import as_of_grid
    from salespilot.training.runs import feature_table_plans

    settings = Settings()
    scan = group_inputs.scan(data_dir, n_groups, observed_until=settings.observed_until)
    grid = as_of_grid(scan.small) if as_of is None else pd.DatetimeIndex([pd.Timestamp(as_of)])
    plans = [
        (p.table, None if p.skipped else int(p.horizon_days), p.skipped)
        for p in feature_table_plans(scan.small, settings, tables)
    ]
    folders, cross = [], None
    if any(skipped is None for *_, skipped in plans):
        folder = Path(inputs_dir) / scan.history_hash
        folders = group_inputs.write_groups(scan, folder)
        attempts = any(t == "attempts" and skipped is None for t, _, skipped in plans)
        cross = group_inputs.cross_account(scan, grid, folders, attempts=attempts)
    ids = scan.small.accounts["account_id"].to_numpy(dtype=object)
    return {
        "history_hash": scan.history_hash,
        "dates": [d.isoformat() for d in grid],
        "plans": plans,
        "jobs": [
            (str(f), list(ids[scan.groups == g]), cross, scan.observed_until)
            for g, f in enumerate(folders)
        ],
    }


@task(cache_key_fn=_group_key, persist_result=True)
def build_group(
    history: History,
    account_ids: list[str] | None,
    activity_rows: np.ndarray | None,
    history_hash: str,
    group: int,
    n_groups: int,
    plans: list[tuple[str, int]],
    dates: list[str],
    parts_dir: str,
) -> dict[str, str]:
    """Build each planned table's rows of the accounts ``account_ids`` (``history`` is their
    slice, whose activities were rows ``activity_rows`` of the whole; None: the whole
    history) and write each as a Parquet part; return their paths."""
    from salespilot.atomic import replacing
    from salespilot.features.pit import entity_index
    from salespilot.features.training_sets import build_training_set

    grid = pd.DatetimeIndex(dates)
    paths = {}
    for table, horizon_days in plans:
        frame = build_training_set(history, table, grid, horizon_days, account_ids=account_ids)
        # each row's place in the whole history's table, to put the parts back in order
        if table == "attempts":
            at = pd.Index(history.activities["activity_id"]).get_indexer(frame["activity_id"])
            rows = at if activity_rows is None else activity_rows[at]
        else:
            entity = "opportunity" if table == "deals" else "account"
            key = "opportunity_id" if table == "deals" else "account_id"
            rows = entity_index(history, entity).get_indexer(frame[key].to_numpy(dtype=object))
        frame["_row"] = np.asarray(rows, dtype=np.int64)
        frame = frame.sort_values(_ROW_ORDER[table], kind="stable", ignore_index=True)
        frame["_batch"] = _batch_keys(table, frame)
        out = Path(parts_dir) / history_hash / f"{table}-{group:03d}-of-{n_groups:03d}.parquet"
        with replacing(out) as tmp:  # a part is whole or absent: a killed task is simply redone
            _write_part(frame, tmp)
        paths[table] = str(out)
        del frame
    return paths


@task(cache_key_fn=_group_key, persist_result=True)
def build_group_folder(
    folder: str,
    account_ids: list[str],
    cross: Any,
    observed_until: pd.Timestamp,
    history_hash: str,
    group: int,
    n_groups: int,
    plans: list[tuple[str, int]],
    dates: list[str],
    parts_dir: str,
) -> dict[str, str]:
    """:func:`build_group` of one group's history folder (written by :func:`prepare_groups`;
    validated as it loads): only this group's slice is ever read here."""
    from salespilot.features.group_inputs import load_group

    stated = Settings().observed_until
    history, rows = load_group(folder, cross, observed_until, stated_until=stated)
    return build_group.fn(
        history, account_ids, rows, history_hash, group, n_groups, plans, dates, parts_dir
    )


def _write_part(frame: pd.DataFrame, path: Path) -> None:
    """One row group per batch key (``_batch``), in key order: :func:`assemble` reads one
    batch of every part at a time."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.Schema.from_pandas(frame, preserve_index=False)
    with pq.ParquetWriter(path, schema) as writer:
        if not len(frame):
            writer.write_table(pa.Table.from_pandas(frame, schema=schema, preserve_index=False))
            return
        keys = frame["_batch"].to_numpy()
        cuts = np.flatnonzero(np.diff(keys)) + 1
        for lo, hi in zip(np.r_[0, cuts], np.r_[cuts, len(frame)], strict=True):
            piece = frame.iloc[lo:hi]
            writer.write_table(pa.Table.from_pandas(piece, schema=schema, preserve_index=False))


@task(cache_policy=NO_CACHE)
def assemble(
    table: str, part_paths: list[str], out_dir: str, history_hash: str, horizon_days: int
) -> dict[str, Any]:
    """Append a table's parts into one file in the order of one big build, batch by batch
    (:func:`_batches`): neither this process nor any other holds the whole table. Stored with
    its metadata; the manifest naming it comes once every table is in place (:func:`seal`)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from salespilot.features.store import read_metadata, write_feature_batches

    # a column missing in every row of one part is typed by the others
    schemas = [pq.read_schema(p) for p in part_paths]
    unified = pa.unify_schemas(schemas, promote_options="permissive")
    path = write_feature_batches(
        table,
        _batches(table, part_paths),
        out_dir,
        history_hash=history_hash,
        horizon_days=horizon_days,
        types={f.name: f.type for f in unified},
    )
    return read_metadata(path)


def _batches(table: str, part_paths: list[str]) -> Iterator[pd.DataFrame]:
    """The table's rows in the order of one big build, one batch key at a time: that key's
    row group of every part (parts are sorted, one row group per key), put together and
    sorted. Categories are those the parts share, else the sorted union of theirs."""
    import pyarrow.parquet as pq

    files = [pq.ParquetFile(p) for p in part_paths]
    where: dict[int, list[tuple[int, int]]] = {}
    for i, f in enumerate(files):
        column = f.schema_arrow.get_field_index("_batch")
        for rg in range(f.metadata.num_row_groups):
            meta = f.metadata.row_group(rg)
            if meta.num_rows:
                where.setdefault(meta.column(column).statistics.min, []).append((i, rg))
    first = files[0].schema_arrow.empty_table().to_pandas()
    categories = _shared_categories(files, first)
    if not where:
        yield first.drop(columns=["_row", "_batch"])
        return
    for key in sorted(where):
        frames = [files[i].read_row_group(rg).to_pandas() for i, rg in where[key]]
        frame = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
        for column, dtype in categories.items():
            if frame[column].dtype != dtype:
                frame[column] = frame[column].astype(dtype)
        frame = frame.sort_values(_ROW_ORDER[table], kind="stable", ignore_index=True)
        yield frame.drop(columns=["_row", "_batch"])


def _shared_categories(files: list[Any], first: pd.DataFrame) -> dict[str, pd.CategoricalDtype]:
    """Each categorical column's categories: the parts' own when they all agree (one big
    build has them too), else the sorted union of theirs."""
    columns = [c for c, d in first.dtypes.items() if isinstance(d, pd.CategoricalDtype)]
    if not columns:
        return {}
    seen: dict[str, list[pd.CategoricalDtype]] = {c: [] for c in columns}
    for f in files:
        for rg in range(f.metadata.num_row_groups):
            if f.metadata.row_group(rg).num_rows:
                head = f.read_row_group(rg, columns=columns).to_pandas()
                for c in columns:
                    seen[c].append(head[c].dtype)
                break
    out = {}
    for c, dtypes in seen.items():
        if not dtypes:
            out[c] = first[c].dtype
        elif all(d == dtypes[0] for d in dtypes):
            out[c] = dtypes[0]
        else:
            union = sorted(set().union(*(d.categories for d in dtypes)))
            out[c] = pd.CategoricalDtype(union)
    return out


@task(cache_policy=NO_CACHE)
def seal(out_dir: str, history_hash: str, tables: list[str]) -> str:
    """Write the folder's manifest, last: it names the tables this build wrote."""
    from salespilot.features.store import write_manifest

    return str(write_manifest(out_dir, history_hash, tables))


@flow(name="build_groups")
def build_groups(
    jobs: list[tuple[Any, ...]],
    history_hash: str,
    plans: list[tuple[str, int]],
    dates: list[str],
    parts_dir: str,
    in_folders: bool,
) -> dict[str, list[str]]:
    """Fan the account groups out over the task runner (threads, or a Dask cluster): each
    job is a group's own arguments (:func:`build_group_folder`'s when ``in_folders``, else
    :func:`build_group`'s); return each table's part paths."""
    builder = build_group_folder if in_folders else build_group
    n_groups = len(jobs)
    futures = [
        builder.submit(*job, history_hash, g, n_groups, plans, dates, parts_dir)
        for g, job in enumerate(jobs)
    ]
    results = [f.result() for f in futures]
    # Prefect's cache remembers a part's path, not its file: a part deleted since (e.g. the
    # state folder was removed and the same history built again) is built again, uncached
    stale = [g for g, paths in enumerate(results) if not all(map(_is_file, paths.values()))]
    if stale:
        rebuild = builder.with_options(refresh_cache=True)
        redone = {
            g: rebuild.submit(*jobs[g], history_hash, g, n_groups, plans, dates, parts_dir)
            for g in stale
        }
        for g, f in redone.items():
            results[g] = f.result()
    return {table: [r[table] for r in results] for table, _ in plans}


def _is_file(path: str) -> bool:
    return Path(path).is_file()


def _default_groups(activities: int, settings: Settings) -> int:
    """On a Dask cluster one group per :data:`ACTIVITIES_PER_GROUP` activities and at least
    one per worker (``dask_workers``); on one machine one per
    :data:`LOCAL_ACTIVITIES_PER_GROUP`."""
    if settings.task_runner.strip() == "thread":
        return max(1, math.ceil(activities / LOCAL_ACTIVITIES_PER_GROUP))
    return max(1, settings.dask_workers, math.ceil(activities / ACTIVITIES_PER_GROUP))


@flow(name="build_features")
def build_features(
    data_dir: str | None = None,
    out_dir: str | None = None,
    as_of: str | None = None,
    tables: list[str] | None = None,
    account_groups: int | None = None,
) -> dict[str, Any]:
    """Validate the history and build the deals, accounts and attempts feature tables
    (``account_groups``: how many groups of accounts to build apart; by default one per
    :data:`ACTIVITIES_PER_GROUP` activities)."""
    from salespilot.features.group_inputs import source_rows
    from salespilot.features.training_sets import as_of_grid
    from salespilot.flows.runtime import task_runner
    from salespilot.training.runs import feature_table_plans

    logger = get_run_logger()
    settings = Settings()
    data_dir = str(data_dir or settings.data_dir)
    out_dir = str(out_dir or settings.features_dir)
    parts_dir = str(Path(out_dir) / "_parts")
    inputs_dir = Path(out_dir) / "_inputs"
    activities = source_rows(data_dir).get("activities", 0)
    n_groups = account_groups or _default_groups(activities, settings)
    if n_groups > 1:
        # the driver never holds the big tables: each group reads its own folder
        prepared = prepare_groups(data_dir, n_groups, str(inputs_dir), tables, as_of)
        history_hash, dates, jobs = prepared["history_hash"], prepared["dates"], prepared["jobs"]
        table_plans = prepared["plans"]
    else:
        history = load_and_validate(data_dir)
        history_hash = history.content_hash()
        grid = as_of_grid(history) if as_of is None else pd.DatetimeIndex([pd.Timestamp(as_of)])
        dates = [d.isoformat() for d in grid]
        jobs = [(history, None, None)]
        table_plans = [
            (p.table, None if p.skipped else int(p.horizon_days), p.skipped)
            for p in feature_table_plans(history, settings, tables)
        ]
    summary: dict[str, Any] = {"history_hash": history_hash, "data_dir": data_dir, "tables": {}}
    # the same plan as `salespilot features`: each table with its model's horizon and tables
    plans = []
    for table, horizon_days, skipped in table_plans:
        if skipped:
            logger.warning("%s skipped: %s", table, skipped)
            summary["tables"][table] = {"skipped": skipped}
        else:
            plans.append((table, horizon_days))
    if plans:
        fan_out = build_groups.with_options(task_runner=task_runner(settings))
        try:
            parts = fan_out(jobs, history_hash, plans, dates, parts_dir, n_groups > 1)
        finally:
            shutil.rmtree(inputs_dir / history_hash, ignore_errors=True)
        for table, horizon_days in plans:
            summary["tables"][table] = assemble(
                table, parts[table], out_dir, history_hash, horizon_days
            )
            logger.info("%s: %s rows", table, summary["tables"][table]["rows"])
    built = [t for t, info in summary["tables"].items() if "skipped" not in info]
    if built:
        seal(out_dir, history_hash, built)
    return summary
