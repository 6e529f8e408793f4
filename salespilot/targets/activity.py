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


#: A new lead "met" when a meeting or a demo was held within this many days of its creation.
#: The one meaning of ``lead_to_meeting``: process health judges a week's leads by it and the
#: activity plan turns meetings into leads with it (a lead met later is counted as not met).
LEAD_MEETING_WINDOW_DAYS = 30


def _touched(history: History, as_of: pd.Timestamp, kind: str) -> pd.Series:
    """Each opportunity's first held ``kind`` (meeting/demo) before ``as_of``: a held
    activity of that channel, or a move into a stage of that name."""
    times: list[pd.Series] = []
    act = history.activities
    if act is not None and not act.empty:
        a = act[(act["occurred_at"] < as_of) & (act["channel"] == kind)]
        a = a[(a["outcome"].isna() | a["outcome"].eq("held")) & a["opportunity_id"].notna()]
        times.append(a.set_index(a["opportunity_id"].astype(str))["occurred_at"])
    sc = history.stage_changes
    if sc is not None and not sc.empty:
        s = sc[(sc["changed_at"] < as_of) & sc["stage"].str.lower().str.contains(kind[:4])]
        times.append(s.set_index(s["opportunity_id"].astype(str))["changed_at"])
    if not times:
        return pd.Series([], dtype="datetime64[ns]")
    both = pd.concat(times)
    return both.groupby(level=0).min()


def first_meeting(history: History, as_of: pd.Timestamp) -> pd.Series:
    """opportunity_id -> when its first meeting or demo was held (known before ``as_of``)."""
    both = pd.concat([_touched(history, as_of, "meeting"), _touched(history, as_of, "demo")])
    return both.groupby(level=0).min() if len(both) else both


def met_within(
    opportunity_ids: pd.Series,
    created_at: pd.Series,
    first: pd.Series,
    window_days: float = LEAD_MEETING_WINDOW_DAYS,
) -> np.ndarray:
    """Whether each lead "met" (:data:`LEAD_MEETING_WINDOW_DAYS`): a first meeting or demo
    (``first`` from :func:`first_meeting`) within ``window_days`` of its creation."""
    at = pd.to_datetime(first.reindex(opportunity_ids.astype(str)).to_numpy())
    created = pd.to_datetime(created_at.to_numpy())
    return np.asarray(~pd.isna(at) & (at < created + pd.Timedelta(days=window_days)))


def funnel_rates(
    history: History,
    as_of: pd.Timestamp,
    *,
    lookback_days: int = 365,
    settle_days: int = LEAD_MEETING_WINDOW_DAYS,
    prior_strength: float = 10.0,
) -> pd.DataFrame:
    """Per rep: cohort counts, smoothed step conversions and the average won amount.

    The cohort is the deals created in ``[as_of - lookback, as_of - settle)``, old enough to
    have had their meetings and demos; ``won`` counts those won before ``as_of``. A lead
    "met" as process health says (:func:`met_within`).
    """
    as_of = pd.Timestamp(as_of)
    opp = history.opportunities
    cohort = opp[
        (opp["created_at"] >= as_of - pd.Timedelta(days=lookback_days))
        & (opp["created_at"] < as_of - pd.Timedelta(days=settle_days))
    ].copy()
    # lead_to_meeting means what process health means by it (met_within); a demo counts only
    # after such a meeting, so the three steps still multiply to won / leads
    cohort["meeting"] = met_within(
        cohort["opportunity_id"], cohort["created_at"], first_meeting(history, as_of)
    )
    demo = set(_touched(history, as_of, "demo").index)
    cohort["demo"] = cohort["opportunity_id"].astype(str).isin(demo) & cohort["meeting"]
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
