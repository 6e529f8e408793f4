"""Targets backtest on demo data: replay past quarters, print coverage / MAPE / spread per method.

    uv run python bench/targets_backtest.py [--reps 40] [--months 30] [--periods 4] [--seed 1]
                                            [--p-win model|empirical]

Generates a demo history (cached in /tmp), replays the latest ``--periods`` quarters with only
the data before each, and prints the three methods side by side with the issue's bars.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import pandas as pd

from salespilot.features.demo import generate_history
from salespilot.features.loader import load_history
from salespilot.targets.backtest import run_backtest


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=40)
    ap.add_argument("--months", type=int, default=30)
    ap.add_argument("--periods", type=int, default=4)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--end", default="2026-07-01")
    ap.add_argument("--p-win", choices=("model", "empirical"), default="model",
                    help="model: LightGBM refit before each quarter; empirical: stage/age rates")  # fmt: skip
    args = ap.parse_args()
    folder = Path(f"/tmp/salespilot-bench-targets-{args.reps}-{args.months}-{args.seed}")
    t0 = time.perf_counter()
    if not (folder / "opportunities.csv").exists():
        generate_history(folder, reps=args.reps, months=args.months, seed=args.seed,
                         end=pd.Timestamp(args.end))  # fmt: skip
    history = load_history(folder)
    t1 = time.perf_counter()
    scorer_for = None
    if args.p_win == "model":
        from salespilot.targets.modelled import lightgbm_scorer

        def scorer_for(period):
            return lightgbm_scorer(horizon_days=(period.end - period.start).days)

    result = run_backtest(history, periods=args.periods, scorer_for=scorer_for)
    t2 = time.perf_counter()
    out = result.to_dict()
    print(json.dumps(out, indent=1))
    sp, ly, ev = out["salespilot"], out["last_year_plus_20"], out["even_split"]
    print(f"\nhistory: {args.reps} reps, {args.months} months, seed {args.seed}; "
          f"{len(history.opportunities)} deals; p_win {result.p_win_source}; load {t1 - t0:.1f}s, backtest {t2 - t1:.1f}s")  # fmt: skip
    print(f"{'method':<20}{'coverage':>10}{'mape':>10}{'spread':>10}{'wape':>10}")
    for name in ("salespilot", "last_year_plus_20", "even_split"):
        m = out[name]
        print(f"{name:<20}{m['coverage']:>10.3f}{m['mape']:>10.3f}{m['attainment_spread']:>10.3f}"
              f"{m['wape']:>10.3f}")  # fmt: skip
    print("\nbars (issue 6):")
    print(f"  periods >= 4:                         {len(result.periods)}  "
          f"{'OK' if len(result.periods) >= 4 else 'MISSED'}")  # fmt: skip
    ok = abs(sp["coverage"] - 0.5) <= 0.10
    print(
        f"  base coverage within 10 pts of 0.50:  {sp['coverage']:.3f}  {'OK' if ok else 'MISSED'}"
    )
    ok = sp["mape"] < ly["mape"]
    print(f"  mape below last_year_plus_20:         {sp['mape']:.3f} < {ly['mape']:.3f}  "
          f"{'OK' if ok else 'MISSED'}")  # fmt: skip
    ok = sp["attainment_spread"] < min(ly["attainment_spread"], ev["attainment_spread"])
    print(f"  spread below both baselines:          {sp['attainment_spread']:.3f} < "
          f"{min(ly['attainment_spread'], ev['attainment_spread']):.3f}  {'OK' if ok else 'MISSED'}")  # fmt: skip


if __name__ == "__main__":
    main()
