"""Benchmark the demo generator: wall time, CPU time, rows per second, peak memory.

    uv run python bench/generate.py --reps 500 --months 24 [--format parquet] [--out DIR]

Runs once and prints one line per figure plus the rows per table.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from salespilot.features.demo import generate_history


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--reps", type=int, default=500)
    ap.add_argument("--months", type=int, default=24)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--format", default="csv", choices=["csv", "parquet"])
    ap.add_argument("--out", type=Path, default=None, help="keep the history here (default: temp)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp) / "history"
        wall, cpu = time.perf_counter(), time.process_time()
        summary = generate_history(
            out,
            reps=args.reps,
            months=args.months,
            seed=args.seed,
            end=pd.Timestamp("2026-06-30"),
            fmt=args.format,
        )
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        size = sum(p.stat().st_size for p in Path(out).rglob("*") if p.is_file())
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rows = summary["rows"]
    contract = sum(n for name, n in rows.items() if not name.startswith("truth/"))
    total = sum(rows.values())
    print(f"reps={args.reps} months={args.months} format={args.format}")
    print(f"wall time        {wall:8.1f} s")
    print(f"cpu time         {cpu:8.1f} s")
    print(f"peak memory      {peak_mb:8.0f} MB (max RSS)")
    print(f"files on disk    {size / 1e6:8.0f} MB")
    print(f"contract rows    {contract:>12,}  ({contract / wall:,.0f} rows/s wall)")
    print(f"all rows + truth {total:>12,}  ({total / wall:,.0f} rows/s wall)")
    print(
        f"activities       {rows['activities']:>12,}  ({rows['activities'] / wall:,.0f} rows/s wall)"
    )
    print(f"opportunities    {rows['opportunities']:>12,}")
    json.dump(rows, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
