"""How fast does ``load_history`` type and validate a big activities table?

Writes a synthetic contract folder (small reps/accounts/contacts/opportunities tables plus
``--rows`` activities; vectorised numpy, no demo simulation) as CSV and as Parquet, then loads
each once through :func:`salespilot.features.loader.load_history` and prints rows per second.

    uv run python bench/load_history.py --rows 5000000
    uv run python bench/load_history.py --rows 5000000 --out /tmp/h5m   # keep the folders
    uv run python bench/load_history.py --dir path/to/history   # time an existing folder
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from salespilot.features.loader import load_history


def synthetic_tables(rows: int, seed: int = 0) -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    n_reps, n_accounts, n_contacts, n_opps = 500, 50_000, 120_000, 200_000
    start = pd.Timestamp("2024-07-01")
    reps = pd.DataFrame(
        {
            "rep_id": [f"R{i:04d}" for i in range(n_reps)],
            "name": [f"Rep {i}" for i in range(n_reps)],
            "team": rng.choice(["north", "south", "east", "west"], n_reps),
            "region": rng.choice(["EMEA", "AMER", "APAC"], n_reps),
            "manager_id": "M1",
            "hired_at": "2023-01-01",
            "left_at": None,
        }
    )
    acc_ids = np.array([f"A{i:06d}" for i in range(n_accounts)])
    accounts = pd.DataFrame(
        {
            "account_id": acc_ids,
            "name": acc_ids,
            "industry": "software",
            "region": "EMEA",
            "employees": rng.integers(5, 5000, n_accounts).astype(str),
            "created_at": "2024-01-01",
            "owner_rep_id": reps["rep_id"].to_numpy()[rng.integers(0, n_reps, n_accounts)],
        }
    )
    con_ids = np.array([f"C{i:06d}" for i in range(n_contacts)])
    contacts = pd.DataFrame(
        {
            "contact_id": con_ids,
            "account_id": acc_ids[rng.integers(0, n_accounts, n_contacts)],
            "role": rng.choice(["decision_maker", "influencer", "user", "other"], n_contacts),
            "timezone": rng.choice(["Europe/Paris", "America/New_York", "Asia/Tokyo"], n_contacts),
        }
    )
    opp_ids = np.array([f"O{i:06d}" for i in range(n_opps)])
    created = start + pd.to_timedelta(rng.integers(0, 600, n_opps), unit="D")
    status = rng.choice(["open", "won", "lost"], n_opps)
    closed = (created + pd.Timedelta(days=30)).strftime("%Y-%m-%d").to_numpy(dtype=object)
    closed[status == "open"] = None
    opportunities = pd.DataFrame(
        {
            "opportunity_id": opp_ids,
            "account_id": acc_ids[rng.integers(0, n_accounts, n_opps)],
            "owner_rep_id": reps["rep_id"].to_numpy()[rng.integers(0, n_reps, n_opps)],
            "product_line": "platform",
            "lead_source": "web",
            "amount": rng.integers(1000, 90000, n_opps).astype(str),
            "created_at": created.strftime("%Y-%m-%d"),
            "expected_close_at": None,
            "closed_at": closed,
            "status": status,
        }
    )
    seconds = rng.integers(0, 700 * 86400, rows)
    occurred = (start + pd.to_timedelta(seconds, unit="s")).strftime("%Y-%m-%dT%H:%M:%SZ")
    contact = con_ids[rng.integers(0, n_contacts, rows)].astype(object)
    contact[rng.random(rows) < 0.2] = None
    activities = pd.DataFrame(
        {
            "activity_id": np.char.add("X", np.arange(rows).astype(str)),
            "occurred_at": occurred,
            "rep_id": reps["rep_id"].to_numpy()[rng.integers(0, n_reps, rows)],
            "account_id": acc_ids[rng.integers(0, n_accounts, rows)],
            "contact_id": contact,
            "opportunity_id": opp_ids[rng.integers(0, n_opps, rows)],
            "channel": rng.choice(["call", "email", "meeting", "demo", "message"], rows),
            "direction": rng.choice(["outbound", "inbound"], rows),
            "outcome": rng.choice(["connected", "no_answer", "replied", "no_reply"], rows),
            "duration_s": rng.integers(0, 3600, rows).astype(str),
        }
    )
    return {
        "reps": reps,
        "accounts": accounts,
        "contacts": contacts,
        "opportunities": opportunities,
        "activities": activities,
    }


def write(tables: dict[str, pd.DataFrame], folder: Path, fmt: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, df in tables.items():
        table = pa.Table.from_pandas(df, preserve_index=False)
        if fmt == "csv":
            pa_csv.write_csv(table, folder / f"{name}.csv")
        else:
            pq.write_table(table, folder / f"{name}.parquet")


def time_load(folder: Path, label: str) -> None:
    t0, cpu0 = time.perf_counter(), time.process_time()
    history = load_history(folder, now="2030-01-01")
    seconds, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    rows = sum(len(history.table(n)) for n in history.present_tables)
    acts = 0 if history.activities is None else len(history.activities)
    print(
        f"{label:8s} {rows:>11,} rows ({acts:,} activities) in {seconds:6.1f} s "
        f"= {rows / seconds:,.0f} rows/s (CPU time of all threads {cpu:.1f} s; the two differ "
        "when other processes share the cores)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="activities to generate")
    parser.add_argument("--dir", type=Path, help="time this existing history folder instead")
    parser.add_argument("--out", type=Path, help="keep the synthetic folders here (csv/, parquet/)")
    args = parser.parse_args()
    if args.dir:
        time_load(args.dir, args.dir.name)
        return
    t0 = time.perf_counter()
    tables = synthetic_tables(args.rows)
    with tempfile.TemporaryDirectory() as tmp:
        root = args.out or Path(tmp)
        for fmt in ("csv", "parquet"):
            write(tables, root / fmt, fmt)
        print(f"wrote synthetic folders in {time.perf_counter() - t0:.1f} s")
        del tables
        for fmt in ("csv", "parquet"):
            time_load(root / fmt, fmt)


if __name__ == "__main__":
    main()
