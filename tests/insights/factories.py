"""Hand-built histories whose causes are known: each rep's lead flow, stage pass rates, deal
size and lead-source mix are set exactly, and deals follow them (seeded draws)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from salespilot.features.history import History

STAGES = ("qualification", "demo", "proposal")
NORM = {"qualification": 0.6, "demo": 0.5, "proposal": 0.8}


def rep(rep_id: str, team: str = "north", **kw) -> dict:
    """One rep's spec; any of leads_per_month, passes, amount, sources, source_win, lines
    (product line -> share of the leads) and line_passes (product line -> its own passes)."""
    spec = {
        "rep_id": rep_id,
        "team": team,
        "leads_per_month": 8.0,
        "passes": dict(NORM),
        "amount": 10_000.0,
        "sources": {"referral": 0.2, "cold": 0.8},
        "source_win": {},  # source -> pass-rate multiplier at qualification
        "lines": {"core": 1.0},
        "line_passes": {},
    }
    spec.update(kw)
    return spec


def build(
    specs: list[dict],
    *,
    end: str = "2026-04-01",
    months: int = 15,
    target_per_rep: float | None = None,
    subscriptions: bool = False,
    seed: int = 0,
) -> History:
    end_ts = pd.Timestamp(end)
    start = end_ts - pd.DateOffset(months=months)
    reps, opps, stages, subs = [], [], [], []
    for r_i, s in enumerate(specs):
        reps.append(
            {
                "rep_id": s["rep_id"],
                "name": f"Rep {s['rep_id']}",
                "team": s["team"],
                "region": "emea",
                "manager_id": f"M-{s['team']}",
                "hired_at": start - pd.Timedelta(days=400),
                "left_at": pd.NaT,
            }
        )
        n = round(s["leads_per_month"] * months)
        created = start + pd.to_timedelta(np.linspace(0, (end_ts - start).days - 1, n), unit="D")
        names = list(s["sources"])
        weights = np.array([s["sources"][k] for k in names])
        source_idx = np.searchsorted(np.cumsum(weights), ((np.arange(n) * 0.7548776662) % 1.0))
        source = [names[min(i, len(names) - 1)] for i in source_idx]
        line_names = list(s["lines"])
        line_w = np.array([s["lines"][k] for k in line_names])
        line_idx = np.searchsorted(np.cumsum(line_w), ((np.arange(n) * 0.6180339887) % 1.0))
        line = [line_names[min(i, len(line_names) - 1)] for i in line_idx]
        rng = np.random.default_rng(seed + r_i)
        alive = np.ones(n, dtype=bool)
        reached = np.zeros(n, dtype=int)
        for st_i, st in enumerate(STAGES):
            rate = np.array([s["line_passes"].get(ln, s["passes"])[st] for ln in line])
            if st_i == 0:
                rate = np.clip(rate * np.array([s["source_win"].get(x, 1.0) for x in source]), 0, 1)
            passed = alive & (rng.random(n) < rate)
            reached[alive] = st_i + 1
            alive = passed
        for i in range(n):
            oid = f"O{r_i:02d}{i:04d}"
            acc = f"A{r_i:02d}{i:04d}"
            t0 = created[i]
            for k in range(reached[i]):
                if t0 + pd.Timedelta(days=7 * k) >= end_ts:
                    break
                stages.append(
                    {
                        "opportunity_id": oid,
                        "changed_at": t0 + pd.Timedelta(days=7 * k),
                        "stage": STAGES[k],
                    }
                )
            won = bool(alive[i])
            close = t0 + pd.Timedelta(days=7 * reached[i] + 3)
            if close >= end_ts:
                close, status = pd.NaT, "open"
            else:
                status = "won" if won else "lost"
                stages.append(
                    {
                        "opportunity_id": oid,
                        "changed_at": close,
                        "stage": "closed_won" if won else "closed_lost",
                    }
                )
            opps.append(
                {
                    "opportunity_id": oid,
                    "account_id": acc,
                    "owner_rep_id": s["rep_id"],
                    "product_line": line[i],
                    "lead_source": source[i],
                    "amount": float(s["amount"]),
                    "created_at": t0,
                    "expected_close_at": t0 + pd.Timedelta(days=30),
                    "closed_at": close,
                    "status": status,
                }
            )
            if subscriptions and status == "won":
                # referral customers stay, cold ones leave after 6 months
                ended = pd.NaT if source[i] == "referral" else close + pd.Timedelta(days=183)
                subs.append(
                    {
                        "subscription_id": f"S{oid}",
                        "account_id": acc,
                        "product_line": line[i],
                        "started_at": close,
                        "ended_at": ended if pd.notna(ended) and ended < end_ts else pd.NaT,
                        "monthly_value": 100.0,
                    }
                )
    opp = pd.DataFrame(opps)
    accounts = pd.DataFrame(
        {
            "account_id": opp["account_id"],
            "name": opp["account_id"],
            "industry": "software",
            "region": "emea",
            "employees": 50,
            "created_at": opp["created_at"],
            "owner_rep_id": opp["owner_rep_id"],
        }
    )
    targets = None
    if target_per_rep is not None:
        q = pd.Timestamp(year=end_ts.year, month=3 * ((end_ts.month - 1) // 3) + 1, day=1)
        targets = pd.DataFrame(
            {
                "rep_id": [s["rep_id"] for s in specs],
                "period_start": q,
                "period_end": q + pd.DateOffset(months=3) - pd.Timedelta(days=1),
                "amount": float(target_per_rep),
            }
        )
    return History(
        reps=pd.DataFrame(reps),
        accounts=accounts,
        opportunities=opp,
        stage_changes=pd.DataFrame(stages),
        subscriptions=pd.DataFrame(subs) if subscriptions else None,
        targets=targets,
    )
