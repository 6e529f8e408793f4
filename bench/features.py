"""How fast are the point-in-time feature builders on a big history?

Builds the three tables (deal and account training sets on a weekly two-year grid, every
contact attempt) from a generated history of >= 5M activities and 200k opportunities and
prints wall time, rows per second and peak memory (RSS).

    uv run python bench/features.py                       # synthetic: 5M activities, 200k deals
    uv run python bench/features.py --activities 1000000  # smaller, for a quick look
    uv run python bench/features.py --data DIR            # an existing history folder
    uv run python bench/features.py --activities 500000 --hash   # + each table's digest

The synthetic history is drawn with vectorised numpy (the demo simulator is the realistic
one, but it takes minutes at this size): deals live 10-120 days, move through stages, and
get activities inside their lifetime; accounts hold subscriptions that start and end.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import resource
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

from salespilot.features.history import History

ZONES = np.array(
    ["Europe/Paris", "America/New_York", "Asia/Tokyo", "Europe/London", "Australia/Sydney"]
)
STAGES = np.array(["qualification", "discovery", "demo", "proposal", "negotiation"])
CHANNELS = np.array(["call", "email", "meeting", "demo", "message"])


def synthetic_history(
    activities: int = 5_000_000,
    opportunities: int = 200_000,
    *,
    reps: int = 800,
    accounts: int = 60_000,
    contacts: int = 150_000,
    subscriptions: int = 40_000,
    days: int = 760,
    seed: int = 0,
) -> History:
    """A contract-shaped History drawn in a few seconds (ids as str, timestamps ns)."""
    rng = np.random.default_rng(seed)
    start = np.datetime64("2024-06-01T00:00:00", "ns")

    def ids(prefix: str, n: int) -> np.ndarray:
        return np.char.add(prefix, np.arange(n).astype(str))  # fixed-width, not objects

    def at(days_float: np.ndarray) -> np.ndarray:  # whole seconds, like a CRM export
        return start + (days_float * 86_400).astype("timedelta64[s]").astype("timedelta64[ns]")

    rep_ids = ids("R", reps)
    left = np.where(rng.random(reps) < 0.15, at(rng.uniform(30, days, reps)), np.datetime64("NaT"))
    reps_df = pd.DataFrame(
        {
            "rep_id": rep_ids,
            "name": rep_ids,
            "team": rng.choice(["na_ent", "na_mm", "emea", "apac"], reps),
            "region": rng.choice(["NA", "EMEA", "APAC"], reps),
            "manager_id": np.full(reps, "", dtype="U1"),
            "hired_at": at(rng.uniform(-900, days / 2, reps)),
            "left_at": left,
        }
    )
    acc_ids = ids("A", accounts)
    accounts_df = pd.DataFrame(
        {
            "account_id": acc_ids,
            "name": acc_ids,
            "industry": rng.choice(["software", "retail", "finance", "health"], accounts),
            "region": rng.choice(["NA", "EMEA", "APAC"], accounts),
            "employees": rng.integers(5, 20_000, accounts).astype(float),
            "created_at": at(rng.uniform(-400, days / 2, accounts)),
            "owner_rep_id": rep_ids[rng.integers(0, reps, accounts)],
        }
    )
    con_ids = ids("C", contacts)
    con_account = rng.integers(0, accounts, contacts)
    contacts_df = pd.DataFrame(
        {
            "contact_id": con_ids,
            "account_id": acc_ids[con_account],
            "role": rng.choice(["decision_maker", "influencer", "user", "other"], contacts),
            "timezone": rng.choice(ZONES, contacts),
        }
    )
    # deals: created uniformly, live 10-120 days; those alive at the end stay open
    opp_ids = ids("O", opportunities)
    opp_contact = rng.integers(0, contacts, opportunities)
    opp_account = con_account[opp_contact]
    created_d = rng.uniform(0, days - 5, opportunities)
    life = rng.uniform(10, 120, opportunities)
    closed_d = created_d + life
    is_closed = closed_d < days
    won = rng.random(opportunities) < 0.35
    opps_df = pd.DataFrame(
        {
            "opportunity_id": opp_ids,
            "account_id": acc_ids[opp_account],
            "owner_rep_id": rep_ids[rng.integers(0, reps, opportunities)],
            "product_line": rng.choice(["platform", "analytics", "custom"], opportunities),
            "lead_source": rng.choice(
                ["inbound", "outbound", "referral", "partner"], opportunities
            ),
            "amount": rng.lognormal(10, 1, opportunities).round(2),
            "created_at": at(created_d),
            "expected_close_at": at(created_d + rng.uniform(20, 90, opportunities)),
            "closed_at": np.where(is_closed, at(closed_d), np.datetime64("NaT")),
            "status": np.where(is_closed, np.where(won, "won", "lost"), "open"),
        }
    )
    # stages: 1-5 changes spread over the first part of each deal's life
    n_stage = rng.integers(1, 6, opportunities)
    sc_opp = np.repeat(np.arange(opportunities), n_stage)
    within = np.concatenate([np.arange(k) for k in n_stage])
    frac = within / np.repeat(n_stage, n_stage)
    sc_day = created_d[sc_opp] + frac * life[sc_opp] * 0.9
    keep = sc_day < days
    stage_df = pd.DataFrame(
        {
            "opportunity_id": opp_ids[sc_opp[keep]],
            "changed_at": at(sc_day[keep]),
            "stage": STAGES[within[keep]],
        }
    )
    # activities: 75 % on a deal inside its lifetime, the rest account-level
    on_deal = int(activities * 0.75)
    a_opp = rng.integers(0, opportunities, on_deal)
    a_day_deal = created_d[a_opp] + rng.random(on_deal) * np.minimum(
        life[a_opp], days - created_d[a_opp]
    )
    rest = activities - on_deal
    a_contact_rest = rng.integers(0, contacts, rest)
    a_day = np.concatenate([a_day_deal, rng.uniform(0, days, rest)])
    a_contact = np.concatenate([opp_contact[a_opp], a_contact_rest])
    channel = rng.choice(CHANNELS, activities, p=[0.4, 0.35, 0.1, 0.05, 0.1])
    inbound = rng.random(activities) < 0.3
    outcome = np.full(activities, None, dtype=object)
    r = rng.random(activities)
    outcome[channel == "call"] = np.where(r[channel == "call"] < 0.35, "connected", "no_answer")
    outcome[channel == "email"] = np.where(r[channel == "email"] < 0.4, "replied", "no_reply")
    for ch in ("meeting", "demo"):
        m = channel == ch
        outcome[m] = np.where(r[m] < 0.75, "held", np.where(r[m] < 0.9, "postponed", "cancelled"))
    outcome[inbound] = None
    acts_df = pd.DataFrame(
        {
            "activity_id": ids("X", activities),
            "occurred_at": at(a_day),
            "rep_id": rep_ids[rng.integers(0, reps, activities)],
            "account_id": acc_ids[con_account[a_contact]],
            "contact_id": con_ids[a_contact],
            "opportunity_id": np.concatenate(
                [opp_ids[a_opp], np.full(rest, "", dtype=opp_ids.dtype)]
            ),
            "channel": channel,
            "direction": np.where(inbound, "inbound", "outbound"),
            "outcome": outcome,
            "duration_s": np.nan,
        }
    ).sort_values("occurred_at", kind="stable", ignore_index=True)
    sub_account = rng.integers(0, accounts, subscriptions)
    started_d = rng.uniform(-300, days - 10, subscriptions)
    ended_d = started_d + rng.uniform(60, 900, subscriptions)
    subs_df = pd.DataFrame(
        {
            "subscription_id": ids("S", subscriptions),
            "account_id": acc_ids[sub_account],
            "product_line": rng.choice(["platform", "analytics", "custom"], subscriptions),
            "started_at": at(started_d),
            "ended_at": np.where(ended_d < days, at(ended_d), np.datetime64("NaT")),
            "monthly_value": rng.lognormal(7, 1, subscriptions).round(2),
        }
    )
    frames = {
        "reps": reps_df,
        "accounts": accounts_df,
        "contacts": contacts_df,
        "opportunities": opps_df,
        "stage_changes": stage_df,
        "activities": acts_df,
        "subscriptions": subs_df,
    }
    for df in frames.values():  # the loader's dtypes: Arrow-backed str ids/text, ns timestamps
        for c in df.columns:
            if df[c].dtype == object or isinstance(df[c].dtype, pd.StringDtype):
                col = df[c].astype("str")
                df[c] = col.where(col != "")
    return History(**frames)


def _write_synthetic(out_dir: str, activities: int, opportunities: int) -> None:
    history = synthetic_history(activities, opportunities)
    for name in history.present_tables:
        history.table(name).to_parquet(Path(out_dir) / f"{name}.parquet", index=False)


def table_digest(frame: pd.DataFrame) -> str:
    """SHA-256 (first 16 hex digits) of a table's column names, dtypes and values, index
    included: two builds of the same table give the same digest, any changed cell another."""
    h = hashlib.sha256()
    h.update(repr(list(frame.columns)).encode())
    h.update(repr([str(t) for t in frame.dtypes]).encode())
    h.update(pd.util.hash_pandas_object(frame, index=True).to_numpy().tobytes())
    return h.hexdigest()[:16]


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--activities", type=int, default=5_000_000)
    ap.add_argument("--opportunities", type=int, default=200_000)
    ap.add_argument("--data", help="benchmark an existing history folder instead")
    ap.add_argument("--weeks", type=int, default=104, help="grid length (weekly)")
    ap.add_argument(
        "--hash",
        action="store_true",
        help="print each table's digest (columns, dtypes, every value), outside the timings",
    )
    args = ap.parse_args()

    from salespilot.features.pit import observed_end
    from salespilot.features.training_sets import build_training_set

    t0 = time.perf_counter()
    if args.data:
        from salespilot.features.loader import load_history

        history = load_history(args.data)
        how = f"loaded {args.data}"
    else:
        # drawn in a child process and handed over as Parquet, so the memory figures below are
        # those of feature building on a loaded history, not of the generator's temporaries
        with tempfile.TemporaryDirectory() as tmp, ProcessPoolExecutor(1) as pool:
            pool.submit(_write_synthetic, tmp, args.activities, args.opportunities).result()
            history = History(**{p.stem: pd.read_parquet(p) for p in Path(tmp).glob("*.parquet")})
        how = "synthetic, via Parquet"
    t_gen = time.perf_counter() - t0
    print(
        f"history ({how}): {len(history.activities):,} activities, "
        f"{len(history.opportunities):,} opportunities, {len(history.subscriptions):,} "
        f"subscriptions in {t_gen:.1f} s; peak RSS so far {peak_rss_gb():.2f} GB"
    )
    end = observed_end(history).floor("D")
    grid = pd.date_range(end=end, periods=args.weeks, freq="W-MON")
    total_rows, total_s, total_cpu = 0, 0.0, 0.0
    for table in ("deals", "accounts", "attempts"):
        t0, c0 = time.perf_counter(), time.process_time()
        frame = build_training_set(history, table, grid, horizon_days=90)
        dt, dc = time.perf_counter() - t0, time.process_time() - c0
        total_rows += len(frame)
        total_s += dt
        total_cpu += dc
        print(
            f"{table:<9} {len(frame):>10,} rows x {frame.shape[1]:>3} cols  wall {dt:6.1f} s  "
            f"cpu {dc:6.1f} s  {len(frame) / dt:>9,.0f} rows/s  peak RSS {peak_rss_gb():.2f} GB"
        )
        if args.hash:
            print(f"{table:<9} digest {table_digest(frame)}")
        del frame
    print(
        f"all three tables: {total_rows:,} rows over a {len(grid)}-week grid: wall {total_s:.1f} s, "
        f"cpu {total_cpu:.1f} s ({total_rows / total_s:,.0f} rows/s); "
        f"peak RSS {peak_rss_gb():.2f} GB; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )


if __name__ == "__main__":
    main()
