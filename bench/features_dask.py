"""The feature flow on a Dask cluster: wall time, rows and peak memory of every worker.

    uv run python bench/features_dask.py                          # 5M activities, 2 workers
    uv run python bench/features_dask.py --activities 50000000 --opportunities 2000000
    uv run python bench/features_dask.py --scheduler tcp://HOST:8786   # an existing cluster

Draws the synthetic history of ``bench/features.py`` into a history folder (Parquet), starts a
local cluster of ``--workers`` single-threaded worker processes (or uses ``--scheduler``),
points the flow at it the way a deployment does (``SALESPILOT_TASK_RUNNER=dask://ADDRESS``)
and runs ``build_features`` on it. Then prints each worker's peak RSS (the operating system's
figure for the worker process), the flow process's own, and the tables' rows.

The flow cuts the ``as_of`` grid into partitions of 13 weeks: each partition task receives the
whole history, so a worker's peak holds one copy of it plus one partition's tables.
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pandas as pd
from features import _write_synthetic


def _peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--activities", type=int, default=5_000_000)
    ap.add_argument("--opportunities", type=int, default=200_000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--scheduler", help="an existing scheduler (tcp://HOST:PORT)")
    ap.add_argument("--data", help="an existing history folder instead of the synthetic one")
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
        summary = build_features(data_dir=str(data), out_dir=str(Path(tmp) / "features"))
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        for table, info in summary["tables"].items():
            print(f"{table:<9} {info.get('rows', info.get('skipped'))!s:>12} rows")
        peaks = client.run(_peak_rss_gb)
        for worker, gb in sorted(peaks.items()):
            print(f"worker {worker}: peak RSS {gb:.2f} GB")
        print(
            f"flow wall {wall:.1f} s (flow process cpu {cpu:.1f} s, peak RSS {_peak_rss_gb():.2f} GB) "
            f"on {len(peaks)} workers; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
        )
        client.close()
        if cluster is not None:
            cluster.close()


if __name__ == "__main__":
    main()
