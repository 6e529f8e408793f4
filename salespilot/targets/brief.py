"""The weekly brief of a team: the week's three largest improvement opportunities, and the
week's numbers a manager reads on Monday.

Candidate opportunities, each with an expected value over the rest of the quarter:

* **gap causes** (when the quarter has a target): each rep's funnel factor below the team's
  norm, worth its term of the gap attribution (:mod:`~salespilot.targets.gap`);
* **channels**: moving a tenth of the team's leads from its lowest- to its highest-value
  lead source, worth the difference in value per lead (:mod:`~salespilot.targets.channels`);
* **process health**: a rep's new leads below plan, worth the missing leads times the team's
  value per lead; a metric in warning, worth its rep's share of the team's value per week;
* **hand-over risk**: handed-over open deals missing something, worth amount x the team's
  win rate (:mod:`~salespilot.targets.handover`).

The three largest by expected value make the brief, with the week's new opportunities, the
average number of stages a deal closed in the last 90 days went through, and the customers
(paying accounts) with nothing logged in 30 days.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from salespilot.features.history import History
from salespilot.features.names import unknown_name
from salespilot.features.pit import data_as_of
from salespilot.targets.channels import channel_insights
from salespilot.targets.forecast import ForecastConfig
from salespilot.targets.gap import FUNNEL, _factor_text, gap_attribution
from salespilot.targets.handover import _paying_accounts, handover_risk
from salespilot.targets.health import HealthThresholds
from salespilot.targets.modelled import Scorer
from salespilot.targets.periods import period_containing

log = logging.getLogger(__name__)

SILENT_DAYS = 30
STAGES_WINDOW_DAYS = 90
CHANNEL_SHIFT = 0.10


def improvement_opportunities(
    history: History,
    team: str,
    *,
    as_of: pd.Timestamp,
    scorer: Scorer | None = None,
    forecast_config: ForecastConfig | None = None,
    thresholds: HealthThresholds | None = None,
    handovers: pd.DataFrame | None = None,
) -> tuple[list[dict], list[str]]:
    """Every candidate opportunity of ``team`` as of ``as_of``, largest expected value first,
    and notes on what could not be computed. Each has a title, an expected value, an action,
    its ``source`` and a ``subject`` naming what to act on (a rep and a funnel factor, two lead
    sources, a deal or an account) for whoever acts on it, or simulates doing so.
    ``handovers``: the team's :func:`handover_risk` rows, when already computed."""
    from salespilot.targets.service import team_health

    reps = history.reps
    team_reps = set(reps.loc[reps["team"].astype(str) == team, "rep_id"])
    mine = history.opportunities[history.opportunities["owner_rep_id"].isin(team_reps)]
    notes: list[str] = []
    candidates: list[dict] = []
    quarter = period_containing(as_of - pd.Timedelta(seconds=1), "quarter")
    weeks_left = max((quarter.end - as_of) / pd.Timedelta(days=7), 1.0)
    value_per_lead = _team_value_per_lead(mine, as_of)
    try:
        gap = gap_attribution(
            history, team, quarter, as_of=as_of, scorer=scorer, forecast_config=forecast_config
        )
        candidates += _gap_candidates(gap)
    except ValueError as exc:
        notes.append(f"no gap attribution: {exc}")
    candidates += _channel_candidates(history, team, as_of, mine, quarter.months)
    try:
        health = team_health(
            history,
            team,
            as_of=as_of,
            thresholds=thresholds,
            forecast_config=forecast_config,
            scorer=scorer,
        )
        candidates += _health_candidates(health, value_per_lead, weeks_left)
    except (LookupError, ValueError) as exc:
        notes.append(f"no process health: {exc}")
    if handovers is None:
        handovers = handover_risk(history, team=team, as_of=as_of)
    win_rate = _team_win_rate(mine, as_of)
    for r in handovers.itertuples():
        candidates.append(
            {
                "title": f"Hand-over: {r.kind} {r.id} of {r.owner_rep_id} (from {r.previous_owner})",
                "expected_value": float(r.amount) * (win_rate if r.kind == "deal" else 1.0),
                "action": r.action,
                "source": "handover",
                "subject": {"kind": r.kind, "id": r.id, "rep_id": r.owner_rep_id},
            }
        )
    candidates = [c for c in candidates if c["expected_value"] > 0]
    candidates.sort(key=lambda c: -c["expected_value"])
    return candidates, notes


def weekly_brief(
    history: History,
    team: str,
    *,
    as_of: pd.Timestamp | None = None,
    scorer: Scorer | None = None,
    forecast_config: ForecastConfig | None = None,
    thresholds: HealthThresholds | None = None,
) -> dict:
    """The brief of ``team`` for the complete week before ``as_of`` (Monday to Sunday)."""
    as_of = pd.Timestamp(as_of) if as_of is not None else data_as_of(history)
    reps = history.reps
    if team not in set(reps["team"].astype(str)):
        raise LookupError(unknown_name("team", team, reps["team"].astype(str)))
    monday = (as_of - pd.Timedelta(days=as_of.weekday())).normalize()
    week_start = monday - pd.Timedelta(days=7) if monday + pd.Timedelta(days=7) > as_of else monday
    week_end = week_start + pd.Timedelta(days=7)
    iso = week_start.isocalendar()
    team_reps = set(reps.loc[reps["team"].astype(str) == team, "rep_id"])
    opp = history.opportunities
    mine = opp[opp["owner_rep_id"].isin(team_reps)]
    handovers = handover_risk(history, team=team, as_of=as_of)
    candidates, notes = improvement_opportunities(
        history,
        team,
        as_of=as_of,
        scorer=scorer,
        forecast_config=forecast_config,
        thresholds=thresholds,
        handovers=handovers,
    )
    top = [{**c, "expected_value": round(c["expected_value"], 2)} for c in candidates[:3]]

    new = mine[(mine["created_at"] >= week_start) & (mine["created_at"] < week_end)]
    return {
        "team": team,
        "week": f"{iso.year}-W{iso.week:02d}",
        "week_start": week_start.strftime("%Y-%m-%d"),
        "as_of": as_of.isoformat(),
        "opportunities": top,
        "new_opportunities": len(new),
        "new_opportunities_value": round(float(new["amount"].sum()), 2),
        "avg_stages_per_deal": _avg_stages(history, mine, as_of),
        "silent_customers": _silent_customers(history, team_reps, as_of),
        "handovers": [
            {k: (v.isoformat() if isinstance(v, pd.Timestamp) else v) for k, v in r.items()}
            for r in handovers.drop(columns=["handed_over_at"]).to_dict(orient="records")
        ],
        "notes": notes,
    }


def _team_value_per_lead(mine: pd.DataFrame, as_of: pd.Timestamp) -> float:
    """Won value per deal created, over the deals created in the year before the last 30
    days (young deals have not had their chance yet)."""
    cohort = mine[
        (mine["created_at"] >= as_of - pd.Timedelta(days=365))
        & (mine["created_at"] < as_of - pd.Timedelta(days=30))
    ]
    if cohort.empty:
        return 0.0
    won = cohort["status"].eq("won") & (cohort["closed_at"] < as_of)
    return float(cohort.loc[won, "amount"].sum() / len(cohort))


def _team_win_rate(mine: pd.DataFrame, as_of: pd.Timestamp) -> float:
    closed = mine[mine["closed_at"].notna() & (mine["closed_at"] < as_of)]
    return float(closed["status"].eq("won").mean()) if len(closed) else 0.0


def _gap_candidates(gap) -> list[dict]:
    out = []
    reps = gap.reps
    for _, r in reps.iterrows():
        for k in FUNNEL:
            amount = float(r[f"gap_{k}"])
            if amount <= 0:
                continue
            what, action = _factor_text(k, r[f"f_{k}"], r[f"n_{k}"], gap.by)
            out.append(
                {
                    "title": f"{r['rep_id']}: {what}",
                    "expected_value": amount,
                    "action": f"{r['rep_id']}: {action}",
                    "source": f"gap:{k}",
                    "subject": {
                        "rep_id": r["rep_id"],
                        "factor": k,
                        "rep_value": float(r[f"f_{k}"]),
                        "norm": float(r[f"n_{k}"]),
                    },
                }
            )
    return out


def _channel_candidates(
    history: History, team: str, as_of: pd.Timestamp, mine: pd.DataFrame, months: int
) -> list[dict]:
    try:
        rep = channel_insights(history, team=team, as_of=as_of)
    except (LookupError, ValueError):
        return []
    rows = rep.rows[rep.rows["closed"] >= 10]
    if len(rows) < 2:
        return []
    best = rows.loc[rows["value_per_lead"].idxmax()]
    worst = rows.loc[rows["value_per_lead"].idxmin()]
    recent = mine[mine["created_at"] >= as_of - pd.Timedelta(days=365)]
    leads_per_period = len(recent) / 12.0 * months
    moved = CHANNEL_SHIFT * leads_per_period
    value = moved * float(best["value_per_lead"] - worst["value_per_lead"])
    return [
        {
            "title": f"Channel: {best['lead_source']} brings {best['value_per_lead']:,.0f} a lead,"
            f" {worst['lead_source']} {worst['value_per_lead']:,.0f}",
            "expected_value": value,
            "action": f"move {moved:.0f} leads a quarter ({CHANNEL_SHIFT:.0%}) of prospecting"
            f" from {worst['lead_source']} to {best['lead_source']}",
            "source": "channels",
            "subject": {
                "from": str(worst["lead_source"]),
                "to": str(best["lead_source"]),
                "share": CHANNEL_SHIFT,
            },
        }
    ]


def _health_candidates(health, value_per_lead: float, weeks_left: float) -> list[dict]:
    out = []
    for a in health.alerts:
        rows = health.reps[health.reps["rep_id"] == a["rep_id"]].sort_values("week_start")
        plan = float(rows["plan_leads_per_week"].iloc[-1])
        recent = float(rows["leads"].tail(a["weeks_below"]).mean())
        missing = max(plan - recent, 0.0) * weeks_left
        # the health check's first lead indicator is what the manager looks at behind the shortfall
        first = (
            f"look first at this: {a['look_first'][0]['message']}"
            if a["look_first"]
            else a["message"]
        )
        out.append(
            {
                "title": f"{a['rep_id']}: {a['message']}",
                "expected_value": missing * value_per_lead,
                "action": f"{a['rep_id']}: {first}",
                "source": "health",
                "subject": {
                    "rep_id": a["rep_id"],
                    "plan_leads_per_week": plan,
                    "recent_leads_per_week": recent,
                },
            }
        )
    return out


def _avg_stages(history: History, mine: pd.DataFrame, as_of: pd.Timestamp) -> float | None:
    """Mean count of distinct open stages the team's deals closed in the last 90 days went
    through (closing rows such as closed_won / closed_lost do not count)."""
    sc = history.stage_changes
    closed = mine[
        mine["closed_at"].notna()
        & (mine["closed_at"] < as_of)
        & (mine["closed_at"] >= as_of - pd.Timedelta(days=STAGES_WINDOW_DAYS))
    ]
    if sc is None or sc.empty or closed.empty:
        return None
    s = sc[sc["opportunity_id"].isin(closed["opportunity_id"]) & (sc["changed_at"] < as_of)]
    s = s[~s["stage"].astype(str).str.lower().str.startswith("closed")]
    n = s.groupby("opportunity_id")["stage"].nunique().reindex(closed["opportunity_id"])
    return round(float(np.nan_to_num(n.to_numpy(float)).mean()), 2)


def _silent_customers(history: History, team_reps: set[str], as_of: pd.Timestamp) -> int:
    """Paying accounts owned by the team with nothing logged (any direction) in 30 days."""
    paying = _paying_accounts(history, as_of)
    acc = history.accounts
    mine = acc[acc["account_id"].isin(paying.index) & acc["owner_rep_id"].isin(team_reps)]
    act = history.activities
    if act is None or act.empty:
        return len(mine)
    recent = act[
        (act["occurred_at"] < as_of)
        & (act["occurred_at"] >= as_of - pd.Timedelta(days=SILENT_DAYS))
    ]
    return int((~mine["account_id"].isin(set(recent["account_id"]))).sum())
