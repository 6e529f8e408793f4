"""Process health of a team, per rep and per week, against sales-operations thresholds.

Three process metrics, each with a healthy and a warning threshold (configurable):

* ``lead_to_meeting`` - share of the week's new leads (deals created) that "met": a first
  meeting or demo held within ``lead_meeting_window_days`` (the activity plan's definition,
  :func:`salespilot.targets.activity.met_within`); weeks whose window is not over yet are
  left blank rather than judged early;
* ``avg_days_in_stage`` - mean days a deal stayed in a stage, over the stage spells (of the
  rep's deals) that ended during the week;
* ``response_hours`` - the customer response interval: mean hours from the rep's outbound
  email or message to the customer's next inbound touch on that account, over the week's
  messages answered within 7 days (``reply_share`` says how many were).

Thresholds are fixed numbers (:class:`HealthThresholds`), or - ``basis="team_history"``, the
service's default - each team's own: healthy at the median of its reps' weeks over the last
``baseline_weeks``, warning beyond their worst decile. A bar every rep misses is noise; against
its own history a team sees who slipped.

And one plan check: the core metric (new leads per week) below ``alert_ratio`` (70 %) of the
activity plan ``alert_weeks`` (2) weeks in a row raises an alert saying what to look at first.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from salespilot.features.history import History
from salespilot.features.names import unknown_name
from salespilot.targets.activity import LEAD_MEETING_WINDOW_DAYS, first_meeting, met_within


@dataclass(frozen=True)
class HealthThresholds:
    lead_to_meeting_healthy: float = 0.40
    lead_to_meeting_warning: float = 0.25
    days_in_stage_healthy: float = 7.0
    days_in_stage_warning: float = 12.0
    response_hours_healthy: float = 24.0
    response_hours_warning: float = 72.0
    alert_ratio: float = 0.70
    alert_weeks: int = 2
    lead_meeting_window_days: int = LEAD_MEETING_WINDOW_DAYS
    min_leads: int = 3  # fewer leads in a week: conversion shown but not judged
    weeks: int = 8
    #: "fixed": the numbers above; "team_history": each team's own (:func:`team_thresholds`)
    basis: str = "fixed"
    baseline_weeks: int = 26
    healthy_quantile: float = 0.5  # healthy: at least as good as the team's median week
    warning_quantile: float = 0.9  # warning: worse than nine weeks in ten of the team's
    min_baseline: int = 12  # fewer known rep-weeks: the fixed numbers stand


#: metric -> (healthy field, warning field, higher is better, rounding) of HealthThresholds
_BOUNDS = {
    "lead_to_meeting": ("lead_to_meeting_healthy", "lead_to_meeting_warning", True, 2),
    "avg_days_in_stage": ("days_in_stage_healthy", "days_in_stage_warning", False, 1),
    "response_hours": ("response_hours_healthy", "response_hours_warning", False, 0),
}


def team_thresholds(baseline: pd.DataFrame, t: HealthThresholds) -> HealthThresholds:
    """``t`` with each metric's bounds set from the team's own rep-weeks in ``baseline``:
    healthy at the ``healthy_quantile`` week, warning beyond the ``warning_quantile`` one
    (conversion only over weeks with ``min_leads``). A metric with too few known weeks keeps
    its fixed bounds."""
    update: dict[str, float] = {}
    for m, (healthy, warning, higher, digits) in _BOUNDS.items():
        values = baseline[m]
        if m == "lead_to_meeting":
            values = values[baseline["leads"] >= t.min_leads]
        values = values.dropna().to_numpy(float)
        if len(values) < t.min_baseline:
            continue
        qh, qw = t.healthy_quantile, t.warning_quantile
        if higher:  # conversion: the bad tail is the low one
            qh, qw = 1 - qh, 1 - qw
        update[healthy] = round(float(np.quantile(values, qh)), digits)
        update[warning] = round(float(np.quantile(values, qw)), digits)
    return replace(t, **update)


METRICS = ("lead_to_meeting", "avg_days_in_stage", "response_hours")

ADVICE = {
    "lead_to_meeting": "lead-to-meeting conversion is {value:.0%} ({status}: healthy from"
    " {healthy:.0%}, warning below {warn:.0%}): look at lead qualification and the first"
    " follow-up call",
    "avg_days_in_stage": "deals sit {value:.1f} days in a stage ({status}: healthy up to"
    " {healthy:g}, warning above {warn:g}): review the stalled deals and their next steps",
    "response_hours": "customers wait {value:.0f} h for an answer ({status}: healthy up to"
    " {healthy:g} h, warning above {warn:g} h): look at unanswered inbound messages first",
    "leads": "new leads {value:.1f}/week against a plan of {plan:.1f}: look at prospecting"
    " volume and lead sources",
}


def status(metric: str, value: float, t: HealthThresholds) -> str | None:
    """``healthy`` / ``watch`` / ``warning`` for one metric value (None when blank)."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    if metric == "lead_to_meeting":
        if value >= t.lead_to_meeting_healthy:
            return "healthy"
        return "warning" if value < t.lead_to_meeting_warning else "watch"
    healthy, warning = (
        (t.days_in_stage_healthy, t.days_in_stage_warning)
        if metric == "avg_days_in_stage"
        else (t.response_hours_healthy, t.response_hours_warning)
    )
    if value <= healthy:
        return "healthy"
    return "warning" if value > warning else "watch"


@dataclass
class HealthReport:
    team: str
    as_of: pd.Timestamp
    weeks: list[pd.Timestamp]
    reps: pd.DataFrame  # one row per rep x week
    team_weeks: pd.DataFrame  # one row per week, pooled over the team
    alerts: list[dict]
    thresholds: HealthThresholds
    notes: list[str] = field(default_factory=list)

    @property
    def flagged_reps(self) -> list[str]:
        """Reps with a warning in the latest week where the metric is known, or an alert."""
        flagged = {a["rep_id"] for a in self.alerts}
        for rep_id, g in self.reps.groupby("rep_id"):
            for m in METRICS:
                known = g.dropna(subset=[f"{m}_status"]).sort_values("week_start")
                if len(known) and known[f"{m}_status"].iloc[-1] == "warning":
                    flagged.add(rep_id)
        return sorted(flagged)

    def to_dict(self) -> dict:
        def rows(df: pd.DataFrame) -> list[dict]:
            d = df.copy()
            d["week_start"] = d["week_start"].dt.strftime("%Y-%m-%d")
            recs = d.astype(object).where(d.notna(), None).to_dict(orient="records")
            return [{k: _clean(v) for k, v in r.items()} for r in recs]

        return {
            "team": self.team,
            "as_of": self.as_of.isoformat(),
            "weeks": [w.strftime("%Y-%m-%d") for w in self.weeks],
            "thresholds": {k: v for k, v in self.thresholds.__dict__.items() if k != "basis"},
            "thresholds_basis": self.thresholds.basis,
            "flagged_reps": self.flagged_reps,
            "alerts": self.alerts,
            "team_weeks": rows(self.team_weeks),
            "reps": rows(self.reps),
            "notes": self.notes,
        }


def _clean(v):
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float):
        return round(v, 4)
    return v


def _week_grid(as_of: pd.Timestamp, n: int) -> pd.DatetimeIndex:
    """The ``n`` latest complete Monday-based weeks before ``as_of``."""
    monday = (as_of - pd.Timedelta(days=as_of.weekday())).normalize()
    return pd.date_range(end=monday - pd.Timedelta(days=7), periods=n, freq="7D")


def _lead_conversion(history, reps, weeks, as_of, t) -> pd.DataFrame:
    opp = history.opportunities
    leads = opp[opp["owner_rep_id"].isin(reps) & (opp["created_at"] < as_of)][
        ["opportunity_id", "owner_rep_id", "created_at"]
    ]
    leads = leads.assign(
        converted=met_within(
            leads["opportunity_id"],
            leads["created_at"],
            first_meeting(history, as_of),
            t.lead_meeting_window_days,
        )
    )
    leads["week_start"] = _to_week(leads["created_at"])
    leads = leads[leads["week_start"].isin(weeks)]
    g = leads.groupby(["owner_rep_id", "week_start"])
    out = pd.DataFrame({"leads": g.size(), "converted": g["converted"].sum()})
    out.index = out.index.set_names(["rep_id", "week_start"])
    return out


def _to_week(ts: pd.Series) -> pd.Series:
    return (ts - pd.to_timedelta(ts.dt.weekday, unit="D")).dt.normalize()


def _stage_dwell(history, reps, weeks, as_of) -> pd.DataFrame:
    """Completed stage spells per owner and the week they ended in (sum and count of days)."""
    sc = history.stage_changes
    cols = ["rep_id", "week_start", "dwell_sum", "dwell_n"]
    if sc is None or sc.empty:
        return pd.DataFrame(columns=cols).set_index(["rep_id", "week_start"])
    opp = history.opportunities.set_index("opportunity_id")
    s = sc[sc["changed_at"] < as_of].sort_values(["opportunity_id", "changed_at"])
    s = s.assign(owner=opp["owner_rep_id"].reindex(s["opportunity_id"]).to_numpy())
    s = s[s["owner"].isin(reps)]
    # A spell ends with the next stage change (a move to closed_won/lost included).
    spell_end = s.groupby("opportunity_id")["changed_at"].shift(-1)
    done = s.assign(spell_end=spell_end).dropna(subset=["spell_end"])
    done = done.assign(
        days=(done["spell_end"] - done["changed_at"]) / pd.Timedelta(days=1),
        week_start=_to_week(done["spell_end"]),
    )
    done = done[done["week_start"].isin(weeks)]
    g = done.groupby(["owner", "week_start"])["days"]
    out = pd.DataFrame({"dwell_sum": g.sum(), "dwell_n": g.size()})
    out.index = out.index.set_names(["rep_id", "week_start"])
    return out


def _response(history, reps, weeks, as_of) -> pd.DataFrame:
    """Customer response interval: hours from the rep's outbound email or message to the
    customer's next inbound touch on the same account, for the week's answered messages."""
    act = history.activities
    cols = ["rep_id", "week_start", "resp_sum", "resp_n", "sent"]
    if act is None or act.empty:
        return pd.DataFrame(columns=cols).set_index(["rep_id", "week_start"])
    a = act[act["occurred_at"] < as_of]
    sent = a[
        a["rep_id"].isin(reps)
        & (a["direction"] == "outbound")
        & a["channel"].isin(["email", "message"])
    ][["rep_id", "account_id", "occurred_at"]]
    sent = sent.assign(week_start=_to_week(sent["occurred_at"]))
    sent = sent[sent["week_start"].isin(weeks)]
    inbound = a[a["direction"] == "inbound"][["account_id", "occurred_at"]]
    if sent.empty:
        return pd.DataFrame(columns=cols).set_index(["rep_id", "week_start"])
    nxt = pd.merge_asof(
        sent.sort_values("occurred_at"),
        inbound.rename(columns={"occurred_at": "answered_at"}).sort_values("answered_at"),
        left_on="occurred_at",
        right_on="answered_at",
        by="account_id",
        direction="forward",
        allow_exact_matches=False,
    )
    hours = (nxt["answered_at"] - nxt["occurred_at"]) / pd.Timedelta(hours=1)
    # Answers later than the reply window are not replies to this message.
    nxt["hours"] = hours.where(hours <= _REPLY_WINDOW_HOURS)
    g = nxt.groupby(["rep_id", "week_start"])
    return pd.DataFrame(
        {"resp_sum": g["hours"].sum(), "resp_n": g["hours"].count(), "sent": g.size()}
    )


_REPLY_WINDOW_HOURS = 7 * 24.0


def process_health(
    history: History,
    team: str,
    *,
    as_of: pd.Timestamp,
    thresholds: HealthThresholds | None = None,
    plan: pd.DataFrame | None = None,
) -> HealthReport:
    """Weekly process health of ``team``'s reps as of ``as_of``.

    ``plan`` (optional) has ``unit`` (rep id) and ``leads_per_week`` - the activity plan the
    alert compares new leads against. Raises ``LookupError`` for an unknown team.
    """
    t = thresholds or HealthThresholds()
    as_of = pd.Timestamp(as_of)
    roster = history.reps
    if team not in set(roster["team"].astype(str)):
        raise LookupError(unknown_name("team", team, roster["team"].astype(str)))
    members = roster[
        (roster["team"] == team)
        & (roster["hired_at"] < as_of)
        & (roster["left_at"].isna() | (roster["left_at"] >= as_of))
    ]
    reps = list(members["rep_id"])
    weeks = _week_grid(as_of, t.weeks)
    if t.basis == "team_history":
        # the team's own weeks (the shown ones too) set its bounds, then only the shown are kept
        weeks = _week_grid(as_of, max(t.weeks, t.baseline_weeks))
    grid = pd.MultiIndex.from_product([reps, weeks], names=["rep_id", "week_start"])
    conv = _lead_conversion(history, reps, weeks, as_of, t).reindex(grid)
    dwell = _stage_dwell(history, reps, weeks, as_of).reindex(grid)
    resp = _response(history, reps, weeks, as_of).reindex(grid)
    df = pd.concat([conv, dwell, resp], axis=1).reset_index()
    df["leads"] = df["leads"].fillna(0).astype(int)
    df["converted"] = df["converted"].fillna(0).astype(int)
    window_over = df["week_start"] + pd.Timedelta(days=7 + t.lead_meeting_window_days) <= as_of
    df["lead_to_meeting"] = np.where(
        window_over & (df["leads"] > 0), df["converted"] / df["leads"].clip(lower=1), np.nan
    )
    df["avg_days_in_stage"] = df["dwell_sum"] / df["dwell_n"]
    df["response_hours"] = df["resp_sum"] / df["resp_n"].replace(0, np.nan)
    df["reply_share"] = df["resp_n"] / df["sent"].replace(0, np.nan)
    if t.basis == "team_history":
        t = team_thresholds(df, t)
        weeks = weeks[-t.weeks :]
        shown = df["week_start"].isin(weeks).to_numpy()
        df, window_over = (
            df[shown].reset_index(drop=True),
            window_over[shown].reset_index(drop=True),
        )
    team_df = _pool_team(df, window_over)
    for frame in (df, team_df):
        for m in METRICS:
            frame[f"{m}_status"] = [status(m, v, t) for v in frame[m]]
        few = frame["leads"] < t.min_leads
        frame.loc[few, "lead_to_meeting_status"] = None
    if plan is not None:
        p = plan.set_index("unit")["leads_per_week"]
        df["plan_leads_per_week"] = p.reindex(df["rep_id"]).to_numpy()
        df["leads_vs_plan"] = df["leads"] / df["plan_leads_per_week"].replace(0, np.nan)
    alerts = _alerts(df, t) if plan is not None else []
    names = members.set_index("rep_id")["name"]
    df.insert(1, "name", names.reindex(df["rep_id"]).astype(str).to_numpy())
    df = df.drop(columns=["converted", "dwell_sum", "dwell_n", "resp_sum", "resp_n", "sent"])
    notes = [] if plan is not None else ["no activity plan given: the plan alert is off"]
    return HealthReport(team, as_of, list(weeks), df, team_df, alerts, t, notes)


def _pool_team(df: pd.DataFrame, window_over: pd.Series) -> pd.DataFrame:
    g = df.assign(conv_leads=df["leads"].where(window_over, 0), conv=df["converted"]).groupby(
        "week_start"
    )
    s = g[["leads", "conv_leads", "conv", "dwell_sum", "dwell_n", "resp_sum", "resp_n"]].sum()
    conv = s["conv"].where(s["conv_leads"] > 0) / s["conv_leads"].where(s["conv_leads"] > 0)
    return pd.DataFrame(
        {
            "week_start": s.index,
            "leads": s["leads"].astype(int).to_numpy(),
            "lead_to_meeting": conv.where(s["conv_leads"] > 0).to_numpy(),
            "avg_days_in_stage": (s["dwell_sum"] / s["dwell_n"].replace(0, np.nan)).to_numpy(),
            "response_hours": (s["resp_sum"] / s["resp_n"].replace(0, np.nan)).to_numpy(),
        }
    ).reset_index(drop=True)


def _alerts(df: pd.DataFrame, t: HealthThresholds) -> list[dict]:
    alerts = []
    for rep_id, g in df.sort_values("week_start").groupby("rep_id"):
        below = (g["leads_vs_plan"] < t.alert_ratio).to_numpy()
        run = 0
        for b in below[::-1]:  # consecutive weeks ending with the latest
            if not b:
                break
            run += 1
        if run < t.alert_weeks:
            continue
        last = g.iloc[-1]
        look = []
        ranked = []
        for m in METRICS:
            known = g.dropna(subset=[f"{m}_status"])
            if known.empty:
                continue
            row = known.iloc[-1]
            st = row[f"{m}_status"]
            if st in ("warning", "watch"):
                healthy, warn = {
                    "lead_to_meeting": (t.lead_to_meeting_healthy, t.lead_to_meeting_warning),
                    "avg_days_in_stage": (t.days_in_stage_healthy, t.days_in_stage_warning),
                    "response_hours": (t.response_hours_healthy, t.response_hours_warning),
                }[m]
                ranked.append((0 if st == "warning" else 1, m, row[m], st, healthy, warn))
        for _, m, value, st, healthy, warn in sorted(ranked):
            message = ADVICE[m].format(value=value, status=st, healthy=healthy, warn=warn)
            look.append({"metric": m, "message": message})
        recent = g.tail(run)["leads"].mean()
        look.append(
            {
                "metric": "leads",
                "message": ADVICE["leads"].format(value=recent, plan=last["plan_leads_per_week"]),
            }
        )
        alerts.append(
            {
                "rep_id": rep_id,
                "metric": "leads_per_week",
                "weeks_below": int(run),
                "latest_ratio": round(float(last["leads_vs_plan"]), 3),
                "message": f"new leads below {t.alert_ratio:.0%} of plan {run} weeks in a row",
                "look_first": look,
            }
        )
    return alerts
