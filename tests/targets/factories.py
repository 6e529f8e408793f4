"""Small synthetic histories for the targets tests (independent of the demo generator).

Each rep has a hidden productivity; deals move qualified -> meeting -> demo -> proposal and
are won or lost; meetings/demos and emails are logged as activities.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from salespilot.features.history import History

STAGES = ("qualified", "meeting", "demo", "proposal")


def make_history(
    *,
    reps: int = 8,
    months: int = 24,
    seed: int = 0,
    end: str = "2026-01-01",
    new_hires: int = 1,
    leads_per_week: float = 1.5,
) -> History:
    rng = np.random.default_rng(seed)
    end_ts = pd.Timestamp(end)
    start = end_ts - pd.DateOffset(months=months)
    rep_rows = []
    for i in range(reps):
        hired = start - pd.Timedelta(days=400)
        if i >= reps - new_hires:
            hired = end_ts - pd.Timedelta(days=int(150 + 30 * (i - reps + new_hires)))
        rep_rows.append(
            {
                "rep_id": f"R{i:03d}",
                "name": f"Rep {i}",
                "team": "north" if i % 2 == 0 else "south",
                "region": "emea" if i % 4 < 2 else "amer",
                "manager_id": "M1" if i % 2 == 0 else "M2",
                "hired_at": hired,
                "left_at": pd.NaT,
            }
        )
    reps_df = pd.DataFrame(rep_rows)
    skill = rng.uniform(0.5, 1.5, reps)
    opps, stages, acts = [], [], []
    n_acc = 0
    days = (end_ts - start).days
    for i, rep in reps_df.iterrows():
        first = max(rep["hired_at"], start)
        t = first
        while True:
            t = t + pd.Timedelta(
                days=float(rng.exponential(7.0 / (1.25 * leads_per_week * skill[i])))
            )
            if t >= end_ts:
                break
            season = 1.0 + 0.25 * np.sin(2 * np.pi * (t.month - 3) / 12)
            if rng.random() > season / 1.25:
                continue  # seasonal lead flow: fewer leads in the low months
            n_acc += 1
            oid = f"O{len(opps):05d}"
            acc = f"A{n_acc:05d}"
            line = "core" if rng.random() < 0.7 else "addon"
            amount = float(rng.lognormal(np.log(10000 if line == "core" else 3000), 0.4))
            p_stage = min(0.95, 0.75 * np.sqrt(skill[i]))
            cur = t
            closed, status = pd.NaT, "lost"
            for s_i, stage in enumerate(STAGES):
                stages.append({"opportunity_id": oid, "changed_at": cur, "stage": stage})
                if stage in ("meeting", "demo"):
                    acts.append(
                        {
                            "occurred_at": cur + pd.Timedelta(hours=2),
                            "rep_id": rep["rep_id"],
                            "account_id": acc,
                            "opportunity_id": oid,
                            "channel": stage,
                            "direction": "outbound",
                            "outcome": "held",
                        }
                    )
                dwell = pd.Timedelta(days=float(rng.exponential(8.0)))
                cur = cur + dwell
                if rng.random() > p_stage:
                    closed, status = cur, "lost"
                    break
                if s_i == len(STAGES) - 1:
                    closed, status = cur, "won"
            if closed >= end_ts:
                closed, status = pd.NaT, "open"
            for k in range(3):
                sent = t + pd.Timedelta(days=3 * k + 1)
                acts.append(
                    {
                        "occurred_at": sent,
                        "rep_id": rep["rep_id"],
                        "account_id": acc,
                        "opportunity_id": oid,
                        "channel": "email",
                        "direction": "inbound",
                        "outcome": "replied",
                    }
                )
                acts.append(
                    {
                        "occurred_at": sent + pd.Timedelta(hours=float(rng.exponential(12))),
                        "rep_id": rep["rep_id"],
                        "account_id": acc,
                        "opportunity_id": oid,
                        "channel": "email",
                        "direction": "outbound",
                        "outcome": "replied",
                    }
                )
            opps.append(
                {
                    "opportunity_id": oid,
                    "account_id": acc,
                    "owner_rep_id": rep["rep_id"],
                    "product_line": line,
                    "lead_source": "inbound",
                    "amount": round(amount, 2),
                    "created_at": t,
                    "expected_close_at": t + pd.Timedelta(days=45),
                    "closed_at": closed,
                    "status": status,
                }
            )
    del days
    opp_df = pd.DataFrame(opps)
    accounts = pd.DataFrame(
        {
            "account_id": opp_df["account_id"],
            "name": opp_df["account_id"],
            "industry": "software",
            "region": "emea",
            "employees": 50,
            "created_at": opp_df["created_at"],
            "owner_rep_id": opp_df["owner_rep_id"],
        }
    )
    sc = pd.DataFrame(stages)
    sc = sc[sc["changed_at"] < end_ts].drop_duplicates(["opportunity_id", "changed_at"])
    act = pd.DataFrame(acts)
    act = act[act["occurred_at"] < end_ts].reset_index(drop=True)
    act.insert(0, "activity_id", [f"X{i:06d}" for i in range(len(act))])
    act["contact_id"] = None
    act["duration_s"] = np.nan
    for df in (reps_df, opp_df, accounts, sc, act):
        for c in df.columns:
            if df[c].dtype == object:
                df[c] = df[c].astype("str") if df[c].notna().all() else df[c]
    return History(
        reps=reps_df, accounts=accounts, opportunities=opp_df, stage_changes=sc, activities=act
    )
