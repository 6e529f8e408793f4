"""The weekly activity a target takes, from each rep's own funnel.

Funnel: new qualified leads (deals created) -> first meeting held -> demo held -> won. Each
rep's step conversions are smoothed towards the team's (a rep with eight leads is mostly
judged by the team). The plan is a run rate: the weekly activity that, kept up, books the
target every period. Deals created this quarter mostly close in later ones, while this
quarter's bookings largely come from the pipeline already open - so netting the pipeline off
would tell a rep to stop prospecting exactly when next quarter's pipeline has to be built.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from salespilot.features.history import History

STEPS = ("lead_to_meeting", "meeting_to_demo", "demo_to_won")


def _touched(history: History, as_of: pd.Timestamp, kind: str) -> pd.Series:
    """Opportunity ids with a held ``kind`` (meeting/demo) before ``as_of``."""
    ids: list[pd.Series] = []
    act = history.activities
    if act is not None and not act.empty:
        a = act[(act["occurred_at"] < as_of) & (act["channel"] == kind)]
        a = a[a["outcome"].isna() | a["outcome"].eq("held")]
        ids.append(a["opportunity_id"].dropna().astype(str))
    sc = history.stage_changes
    if sc is not None and not sc.empty:
        s = sc[(sc["changed_at"] < as_of) & sc["stage"].str.lower().str.contains(kind[:4])]
        ids.append(s["opportunity_id"].astype(str))
    if not ids:
        return pd.Series([], dtype=str)
    return pd.concat(ids).drop_duplicates()


def funnel_rates(
    history: History,
    as_of: pd.Timestamp,
    *,
    lookback_days: int = 365,
    settle_days: int = 30,
    prior_strength: float = 10.0,
) -> pd.DataFrame:
    """Per rep: cohort counts, smoothed step conversions and the average won amount.

    The cohort is the deals created in ``[as_of - lookback, as_of - settle)``, old enough to
    have had their meetings and demos; ``won`` counts those won before ``as_of``.
    """
    as_of = pd.Timestamp(as_of)
    opp = history.opportunities
    cohort = opp[
        (opp["created_at"] >= as_of - pd.Timedelta(days=lookback_days))
        & (opp["created_at"] < as_of - pd.Timedelta(days=settle_days))
    ].copy()
    met = set(_touched(history, as_of, "meeting"))
    demo = set(_touched(history, as_of, "demo"))
    cohort["meeting"] = cohort["opportunity_id"].isin(met) | cohort["opportunity_id"].isin(demo)
    cohort["demo"] = cohort["opportunity_id"].isin(demo)
    cohort["won"] = cohort["status"].eq("won") & (cohort["closed_at"] < as_of)
    cohort["won_amount"] = cohort["amount"].where(cohort["won"], 0.0)
    reps = history.reps[["rep_id", "team"]]
    counts = (
        cohort.groupby("owner_rep_id")[["meeting", "demo", "won", "won_amount"]]
        .sum()
        .join(cohort.groupby("owner_rep_id").size().rename("leads"))
    )
    counts = reps.set_index("rep_id").join(counts).fillna(0.0)
    team = counts.groupby("team")[["leads", "meeting", "demo", "won", "won_amount"]].sum()
    out = counts.copy()
    chain = (("lead_to_meeting", "leads", "meeting"), ("meeting_to_demo", "meeting", "demo"),
             ("demo_to_won", "demo", "won"))  # fmt: skip
    for name, den, num in chain:
        team_rate = (team[num] + 1.0) / (team[den] + 2.0)  # Laplace: a team with no data is 50 %
        prior = team_rate.reindex(out["team"]).to_numpy()
        out[name] = (out[num] + prior_strength * prior) / (out[den] + prior_strength)
    team_avg = (team["won_amount"] / team["won"].replace(0, np.nan)).reindex(out["team"])
    overall = cohort.loc[cohort["won"], "amount"].mean() if cohort["won"].any() else 0.0
    prior_amount = team_avg.fillna(overall).to_numpy()
    out["avg_won_amount"] = (out["won_amount"] + 5.0 * prior_amount) / (out["won"] + 5.0)
    return out.reset_index(names="rep_id")


def activity_plan(
    targets: pd.DataFrame,
    funnel: pd.DataFrame,
    *,
    weeks: float,
    months: float,
    target_column: str = "base",
) -> pd.DataFrame:
    """Weekly new leads and meetings, and monthly demos, that book the target at a run rate.

    ``targets`` has ``unit`` (rep id) and the target column; ``funnel`` comes from
    :func:`funnel_rates`. wins = target / average won amount, then back up the funnel.
    """
    f = funnel.set_index("rep_id").reindex(targets["unit"])
    target = np.clip(targets[target_column].to_numpy(float), 0.0, None)
    avg = f["avg_won_amount"].to_numpy(float)
    wins = np.divide(target, avg, out=np.zeros_like(target), where=avg > 0)
    demos = wins / np.clip(f["demo_to_won"].to_numpy(float), 1e-3, None)
    meetings = demos / np.clip(f["meeting_to_demo"].to_numpy(float), 1e-3, None)
    leads = meetings / np.clip(f["lead_to_meeting"].to_numpy(float), 1e-3, None)
    return pd.DataFrame(
        {
            "unit": targets["unit"].to_numpy(),
            "target": target,
            "wins_needed": wins,
            "demos_needed": demos,
            "meetings_needed": meetings,
            "leads_needed": leads,
            "leads_per_week": leads / weeks,
            "meetings_per_week": meetings / weeks,
            "demos_per_month": demos / months,
            "lead_to_meeting": f["lead_to_meeting"].to_numpy(float),
            "meeting_to_demo": f["meeting_to_demo"].to_numpy(float),
            "demo_to_won": f["demo_to_won"].to_numpy(float),
            "avg_won_amount": avg,
        }
    )
