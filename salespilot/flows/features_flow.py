"""``build_features``: validate the history, build the three feature tables, persist them.

The work is cut into partitions of the ``as_of`` grid: every snapshot date is independent
given the history, so partitions give exactly the rows of one big build, and with the Dask
task runner they spread over a cluster. (Partitions by account would not: a rep's win rate,
a stage's typical dwell and the population's answer rates cross accounts.) Each partition
is cached by Prefect on (history hash, feature-set version, dates), so an unchanged history
is not rebuilt and a changed one is.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NONE as NO_CACHE

from salespilot.features.history import History
from salespilot.settings import Settings

#: as_of dates per partition task (a year of weekly snapshots is ~4 partitions)
PARTITION_WEEKS = 13


def _partition_key(context: Any, parameters: dict[str, Any]) -> str:
    from salespilot.features.training_sets import FEATURE_SET_VERSION

    dates = parameters["dates"]
    return "-".join(
        [
            "features",
            parameters["history_hash"],
            FEATURE_SET_VERSION,
            parameters["table"],
            str(parameters["horizon_days"]),
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


@task(cache_key_fn=_partition_key, persist_result=True)
def build_partition(
    history: History,
    history_hash: str,
    table: str,
    dates: list[str],
    horizon_days: int,
    parts_dir: str,
) -> str:
    """Build one table on a slice of the grid and write it as a Parquet part; return its path."""
    from salespilot.atomic import replacing
    from salespilot.features.training_sets import build_training_set

    frame = build_training_set(history, table, pd.DatetimeIndex(dates), horizon_days)
    out = Path(parts_dir) / history_hash / f"{table}-{dates[0][:10]}-{dates[-1][:10]}.parquet"
    with replacing(out) as tmp:  # a part is whole or absent: a killed task is simply redone
        frame.to_parquet(tmp, index=False)
    return str(out)


@task(cache_policy=NO_CACHE)
def assemble(
    table: str, part_paths: list[str], out_dir: str, history_hash: str, horizon_days: int
) -> dict[str, Any]:
    """Concatenate a table's parts and store it with its metadata (written whole; the
    manifest naming it comes once every table is in place: :func:`seal`)."""
    from salespilot.features.store import read_metadata, write_feature_tables

    parts = [pd.read_parquet(p) for p in part_paths]
    frame = pd.concat(parts, ignore_index=True)
    # parts carry their own category sets; concat turns those into plain text
    for column, dtype in parts[0].dtypes.items():
        if isinstance(dtype, pd.CategoricalDtype):
            frame[column] = frame[column].astype("category")
    path = write_feature_tables(
        {table: frame},
        out_dir,
        history_hash=history_hash,
        horizon_days=horizon_days,
        manifest=False,
    )[table]
    return read_metadata(path)


@task(cache_policy=NO_CACHE)
def seal(out_dir: str, history_hash: str, tables: list[str]) -> str:
    """Write the folder's manifest, last: it names the tables this build wrote."""
    from salespilot.features.store import write_manifest

    return str(write_manifest(out_dir, history_hash, tables))


@flow(name="build_partitions")
def build_partitions(
    history: History,
    history_hash: str,
    table: str,
    dates: list[str],
    horizon_days: int,
    parts_dir: str,
    step: int,
) -> list[str]:
    """Fan one table's grid out over the task runner (threads, or a Dask cluster)."""
    chunks = [dates[i : i + step] for i in range(0, len(dates), step)]
    futures = [
        build_partition.submit(history, history_hash, table, c, horizon_days, parts_dir)
        for c in chunks
    ]
    paths = [f.result() for f in futures]
    # Prefect's cache remembers a part's path, not its file: a part deleted since (e.g. the
    # state folder was removed and the same history built again) is built again, uncached
    stale = [i for i, path in enumerate(paths) if not Path(path).is_file()]
    if stale:
        rebuild = build_partition.with_options(refresh_cache=True)
        redone = [
            rebuild.submit(history, history_hash, table, chunks[i], horizon_days, parts_dir)
            for i in stale
        ]
        for i, f in zip(stale, redone, strict=True):
            paths[i] = f.result()
    return paths


@flow(name="build_features")
def build_features(
    data_dir: str | None = None,
    out_dir: str | None = None,
    as_of: str | None = None,
    tables: list[str] | None = None,
) -> dict[str, Any]:
    """Validate the history and build the deals, accounts and attempts feature tables."""
    from salespilot.features.training_sets import as_of_grid
    from salespilot.flows.runtime import task_runner
    from salespilot.training.runs import feature_table_plans

    logger = get_run_logger()
    settings = Settings()
    data_dir = str(data_dir or settings.data_dir)
    out_dir = str(out_dir or settings.features_dir)
    history = load_and_validate(data_dir)
    history_hash = history.content_hash()
    grid = as_of_grid(history) if as_of is None else pd.DatetimeIndex([pd.Timestamp(as_of)])
    dates = [d.isoformat() for d in grid]
    parts_dir = str(Path(out_dir) / "_parts")
    fan_out = build_partitions.with_options(task_runner=task_runner(settings))
    summary: dict[str, Any] = {"history_hash": history_hash, "data_dir": data_dir, "tables": {}}
    # the same plan as `salespilot features`: each table with its model's horizon and tables
    for plan in feature_table_plans(history, settings, tables):
        table = plan.table
        if plan.skipped:
            logger.warning("%s skipped: %s", table, plan.skipped)
            summary["tables"][table] = {"skipped": plan.skipped}
            continue
        # attempts are one row per call/email, not per as_of: one partition covers them all
        step = len(dates) if table == "attempts" else PARTITION_WEEKS
        paths = fan_out(history, history_hash, table, dates, plan.horizon_days, parts_dir, step)
        summary["tables"][table] = assemble(table, paths, out_dir, history_hash, plan.horizon_days)
        logger.info("%s: %s rows", table, summary["tables"][table]["rows"])
    built = [t for t, info in summary["tables"].items() if "skipped" not in info]
    if built:
        seal(out_dir, history_hash, built)
    return summary
