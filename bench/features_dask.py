"""The feature flow on a Dask cluster: wall time, rows and peak memory of every worker.

    uv run python bench/features_dask.py                          # 5M activities, 2 workers
    nice -n 10 uv run python bench/features_dask.py --activities 50000000 --opportunities 2000000
    uv run python bench/features_dask.py --scheduler tcp://HOST:8786   # an existing cluster

Draws a synthetic history shaped like ``bench/features.py``'s into a history folder (Parquet):
the small tables by its generator, the activities in chunks of 2M written one after the
other, so the writer's memory does not grow with ``--activities``. Then starts a local cluster
of ``--workers`` single-threaded worker processes (or uses ``--scheduler``), points the flow
at it the way a deployment does (``SALESPILOT_TASK_RUNNER=dask://ADDRESS``) and runs
``build_features`` on it. Prints each worker's peak RSS (the operating system's figure for
the worker process), the flow process's own, and the tables' rows.

The flow reads the big tables (activities, subscriptions) in batches of a million rows, never
whole, keeps a few columns of them (the hash, everyone's calls, the attempts the population's
rates read) and writes each account group's history folder (``--groups``; default one per
3 million activities, at least one per worker); each group's task, on a worker, loads and
validates its own folder only, builds its rows and writes them as a part; the parts are then
appended into each table one batch (an as_of) at a time. Neither a worker nor the flow
process holds the whole history or a whole feature table.

Prints the flow's wall time, each worker's CPU seconds and peak RSS (the operating system's
figures for the worker process, `getrusage`), the flow process's own, and the tables' rows.
A local cluster's workers are started for the run, so their figures are the run's alone.
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from features import CHANNELS, synthetic_history

#: Activities drawn and written at a time.
CHUNK = 2_000_000


def _write_synthetic(out_dir: str, activities: int, opportunities: int, seed: int = 0) -> None:
    """The tables of ``bench/features.py``'s generator, with its activities (75 % on a deal
    inside its life, the rest on an account's contact) drawn chunk by chunk."""
    out = Path(out_dir)
    small = synthetic_history(0, opportunities)
    for name in small.present_tables:
        if name != "activities":
            small.table(name).to_parquet(out / f"{name}.parquet", index=False)
    opps, contacts = small.opportunities, small.contacts
    start = np.datetime64("2024-06-01T00:00:00", "ns")
    end = np.datetime64(max(opps["created_at"].max(), opps["closed_at"].max()), "ns")
    created = opps["created_at"].to_numpy("datetime64[ns]")
    until = np.where(pd.isna(opps["closed_at"]), end, opps["closed_at"].to_numpy("datetime64[ns]"))
    span = (until - created).astype(np.int64)
    # a deal's activities are with one contact of its account
    by_account = contacts.groupby("account_id")["contact_id"].first()
    opp_contact = by_account.reindex(opps["account_id"]).to_numpy(dtype=object)
    contact_account = contacts["account_id"].to_numpy(dtype=object)
    contact_ids = contacts["contact_id"].to_numpy(dtype=object)
    opp_ids = opps["opportunity_id"].to_numpy(dtype=object)
    opp_account = opps["account_id"].to_numpy(dtype=object)
    rep_ids = small.reps["rep_id"].to_numpy(dtype=object)
    whole = int((end - start) / np.timedelta64(1, "s"))
    rng = np.random.default_rng(seed)
    writer = None
    for first in range(0, activities, CHUNK):
        n = min(CHUNK, activities - first)
        on_deal = rng.random(n) < 0.75
        opp = rng.integers(0, len(opps), n)
        contact = rng.integers(0, len(contacts), n)
        at_deal = created[opp] + (rng.random(n) * span[opp]).astype("timedelta64[ns]")
        at_rest = start + rng.integers(0, whole, n).astype("timedelta64[s]")
        at = np.where(on_deal, at_deal, at_rest).astype("datetime64[s]").astype("datetime64[ns]")
        channel = rng.choice(CHANNELS, n, p=[0.4, 0.35, 0.1, 0.05, 0.1])
        inbound = rng.random(n) < 0.3
        r = rng.random(n)
        outcome = np.full(n, None, dtype=object)
        outcome[channel == "call"] = np.where(r[channel == "call"] < 0.35, "connected", "no_answer")
        outcome[channel == "email"] = np.where(r[channel == "email"] < 0.4, "replied", "no_reply")
        for ch in ("meeting", "demo"):
            m = channel == ch
            outcome[m] = np.where(
                r[m] < 0.75, "held", np.where(r[m] < 0.9, "postponed", "cancelled")
            )
        outcome[inbound] = None
        chunk = pa.table(
            {
                "activity_id": pa.array(np.char.add("X", np.arange(first, first + n).astype(str))),
                "occurred_at": pa.array(at),
                "rep_id": pa.array(rep_ids[rng.integers(0, len(rep_ids), n)], pa.string()),
                "account_id": pa.array(
                    np.where(on_deal, opp_account[opp], contact_account[contact]), pa.string()
                ),
                "contact_id": pa.array(
                    np.where(on_deal, opp_contact[opp], contact_ids[contact]), pa.string()
                ),
                "opportunity_id": pa.array(np.where(on_deal, opp_ids[opp], None), pa.string()),
                "channel": pa.array(channel, pa.string()),
                "direction": pa.array(np.where(inbound, "inbound", "outbound"), pa.string()),
                "outcome": pa.array(outcome, pa.string()),
                "duration_s": pa.array(np.full(n, np.nan)),
            }
        )
        if writer is None:
            writer = pq.ParquetWriter(out / "activities.parquet", chunk.schema)
        writer.write_table(chunk)
    if writer is not None:
        writer.close()


def _peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def _usage() -> tuple[float, float]:
    """(CPU seconds, peak RSS in GB) of this process so far."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime, r.ru_maxrss / 1024**2


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--activities", type=int, default=5_000_000)
    ap.add_argument("--opportunities", type=int, default=200_000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--scheduler", help="an existing scheduler (tcp://HOST:PORT)")
    ap.add_argument("--data", help="an existing history folder instead of the synthetic one")
    ap.add_argument("--groups", type=int, help="account groups (default: the flow's own)")
    args = ap.parse_args()

    from dask.distributed import Client, LocalCluster

    with tempfile.TemporaryDirectory(prefix="sp-bench-dask-") as tmp:
        data = Path(args.data) if args.data else Path(tmp) / "history"
        if not args.data:
            data.mkdir()
            t0 = time.perf_counter()
            with ProcessPoolExecutor(1) as pool:
                pool.submit(
                    _write_synthetic, str(data), args.activities, args.opportunities
                ).result()
            # the drawn history skips the loader; the flow validates: no rep leaves before hire
            reps = pd.read_parquet(data / "reps.parquet")
            reps.loc[reps["left_at"] < reps["hired_at"], "left_at"] = pd.NaT
            reps.to_parquet(data / "reps.parquet", index=False)
            print(
                f"history: {args.activities:,} activities, {args.opportunities:,} opportunities "
                f"drawn into {data} in {time.perf_counter() - t0:.0f} s"
            )
        cluster = None
        if args.scheduler:
            address = args.scheduler
        else:
            cluster = LocalCluster(
                n_workers=args.workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                memory_limit=0,
            )
            address = cluster.scheduler_address
        client = Client(address)
        os.environ["SALESPILOT_TASK_RUNNER"] = f"dask://{address.removeprefix('tcp://')}"
        os.environ["SALESPILOT_STATE_DIR"] = str(Path(tmp) / "state")
        os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
        # the flow's ephemeral Prefect API starts slowly on busy cores
        os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
        from salespilot.flows.features_flow import build_features

        t0, c0 = time.perf_counter(), time.process_time()
        summary = build_features(
            data_dir=str(data), out_dir=str(Path(tmp) / "features"), account_groups=args.groups
        )
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        for table, info in summary["tables"].items():
            print(f"{table:<9} {info.get('rows', info.get('skipped'))!s:>12} rows")
        peaks = client.run(_usage)
        for worker, (worker_cpu, gb) in sorted(peaks.items()):
            print(f"worker {worker}: cpu {worker_cpu:.0f} s, peak RSS {gb:.2f} GB")
        print(
            f"flow wall {wall:.1f} s (flow process cpu {cpu:.1f} s, peak RSS {_peak_rss_gb():.2f} GB) "
            f"on {len(peaks)} workers; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
        )
        client.close()
        if cluster is not None:
            cluster.close()


if __name__ == "__main__":
    main()
