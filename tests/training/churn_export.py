"""A small churn-only export (accounts and subscriptions, no deals), written as contract files.

Customers sign up over two years; each month a customer leaves with a probability that
depends on its industry and size, so a churn model has something to learn. ``snapshot``
writes the shape of a churn table taken on one day: customers who left did so within the
last month before it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

END = pd.Timestamp("2026-06-30")
INDUSTRIES = ("retail", "software", "manufacturing", "health")
MONTHLY_CHURN = {"retail": 0.06, "software": 0.015, "manufacturing": 0.03, "health": 0.01}
OPPORTUNITIES_HEADER = (
    "opportunity_id,account_id,owner_rep_id,product_line,lead_source,amount,created_at,"
    "expected_close_at,closed_at,status\n"
)


def write_churn_export(
    folder: Path,
    *,
    accounts: int = 240,
    months: int = 24,
    seed: int = 3,
    end: pd.Timestamp = END,
    quiet_days: int = 10,
    snapshot: bool = False,
) -> Path:
    """Write reps, accounts, an empty opportunities table and subscriptions to ``folder``.

    No event falls in the last ``quiet_days`` before ``end`` (an export taken after a quiet
    spell: its last event is not its end). With ``snapshot``, every customer who left did so
    in the month before ``end - quiet_days`` (a "left within the last month" table).
    """
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    last = end - pd.Timedelta(days=quiet_days)
    start = end - pd.DateOffset(months=months)
    span = (last - start).days
    industry = rng.choice(INDUSTRIES, accounts)
    employees = rng.integers(5, 2000, accounts)
    signed = start + pd.to_timedelta(rng.integers(0, span * 3 // 4, accounts), unit="D")
    hazard = np.array([MONTHLY_CHURN[i] for i in industry]) * np.where(employees < 200, 2.0, 1.0)
    if snapshot:
        left = rng.random(accounts) < np.clip(hazard * 4, 0, 0.9)
        ended = last - pd.to_timedelta(rng.integers(1, 30, accounts), unit="D")
        ended = ended.where(left & (ended > signed + pd.Timedelta(days=31)))
    else:
        lifetime = rng.exponential(30.4 / hazard)
        ended = signed + pd.to_timedelta(np.round(lifetime), unit="D")
        ended = ended.where(ended < last)
    ids = [f"A{i:04d}" for i in range(accounts)]
    pd.DataFrame(
        {
            "rep_id": ["R1", "R2"],
            "name": ["Ann", "Bob"],
            "team": ["North", "North"],
            "region": ["EMEA", "EMEA"],
            "manager_id": ["", ""],
            "hired_at": [start.date().isoformat()] * 2,
            "left_at": ["", ""],
        }
    ).to_csv(folder / "reps.csv", index=False)
    pd.DataFrame(
        {
            "account_id": ids,
            "name": [f"Customer {i}" for i in range(accounts)],
            "industry": industry,
            "region": "EMEA",
            "employees": employees,
            "created_at": signed.strftime("%Y-%m-%dT%H:%M:%S"),
            "owner_rep_id": np.where(np.arange(accounts) % 2 == 0, "R1", "R2"),
        }
    ).to_csv(folder / "accounts.csv", index=False)
    (folder / "opportunities.csv").write_text(OPPORTUNITIES_HEADER, encoding="utf-8")
    pd.DataFrame(
        {
            "subscription_id": [f"S{i:04d}" for i in range(accounts)],
            "account_id": ids,
            "product_line": "platform",
            "started_at": signed.strftime("%Y-%m-%dT%H:%M:%S"),
            "ended_at": pd.Series(ended).dt.strftime("%Y-%m-%dT%H:%M:%S").fillna(""),
            "monthly_value": rng.integers(50, 500, accounts),
        }
    ).to_csv(folder / "subscriptions.csv", index=False)
    return folder
