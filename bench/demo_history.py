"""The demo history the quality benchmarks share: generated once per size and seed, in /tmp.

``bench/quality.py``, ``bench/churn_ceiling.py`` and ``bench/win_ceiling.py`` take the same
``--data`` / ``--reps`` / ``--months`` / ``--seed`` and so score the same rows.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import pandas as pd

END = pd.Timestamp("2026-06-30")


def add_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--data", type=Path, default=None, help="an existing demo history folder")
    ap.add_argument("--reps", type=int, default=100)
    ap.add_argument("--months", type=int, default=24)
    ap.add_argument("--seed", type=int, default=11)


def demo_history(args: argparse.Namespace):
    """(folder, loaded History) of ``args``: the given folder, or the generated one."""
    from salespilot.features.demo import generate_history
    from salespilot.features.loader import load_history

    data = args.data or Path(tempfile.gettempdir()) / (
        f"salespilot-bench-{args.reps}x{args.months}-s{args.seed}"
    )
    if not (data / "opportunities.csv").exists() and not (data / "opportunities.parquet").exists():
        t = time.perf_counter()
        generate_history(data, reps=args.reps, months=args.months, seed=args.seed, end=END)
        print(f"generated {data} in {time.perf_counter() - t:.0f} s")
    history = load_history(data)
    print(
        f"history {data}: {len(history.opportunities):,} deals, "
        f"{len(history.activities):,} activities"
    )
    return data, history
