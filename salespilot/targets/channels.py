"""Channel insights: which lead source (or product line) brings customers that close and stay.

Per channel, from deals created before ``as_of``:

* ``leads`` and ``lead_share`` - deals created, and their share of all deals;
* ``win_rate`` with a Wilson score interval (``win_rate_low``, ``win_rate_high``) over the
  deals *closed* before ``as_of`` (open deals have no outcome yet);
* ``cycle_days`` - median days from creation to close of the won deals;
* ``avg_value`` - mean amount of the won deals;
* ``retained_value_12m`` - where subscriptions exist, the expected subscription value a won
  deal brings in its first 12 months: the mean starting monthly value times the months a
  subscription survives, integrated over a Kaplan-Meier curve of the channel's subscriptions
  (censored at ``as_of``, so young subscriptions count for the months they were seen);
* ``value_per_lead`` - (won amount + retained value) per lead, and ``value_share``, the
  channel's share of all that value.

A channel is flagged when its value share is out of line with its lead share
(``value_share / lead_share`` outside ``[1/ratio, ratio]``) *and* its win rate's interval
excludes the overall win rate, so a small channel's lucky quarter is not a flag.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from statistics import NormalDist

import numpy as np
import pandas as pd

from salespilot.features.history import History
from salespilot.features.names import unknown_name
from salespilot.features.pit import data_as_of

DIMENSIONS = ("lead_source", "product_line", "region")  # region: the owner rep's


@dataclass(frozen=True)
class ChannelConfig:
    confidence: float = 0.95
    flag_ratio: float = 1.25  # value share against lead share beyond this: out of line
    min_closed: int = 10  # fewer closed deals: shown, never flagged
    subscription_match_days: float = 3.0  # a subscription started this soon after a win is its


def wilson_interval(successes, trials, confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval of a binomial proportion (NaN where ``trials`` is 0).

    Unlike the normal approximation it stays inside [0, 1] and behaves for 0 or n successes.
    """
    k = np.asarray(successes, dtype=float)
    n = np.asarray(trials, dtype=float)
    z = NormalDist().inv_cdf(0.5 + confidence / 2.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = k / n
        denom = 1.0 + z**2 / n
        centre = (p + z**2 / (2 * n)) / denom
        half = z * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / denom
    low = np.where(n > 0, np.clip(centre - half, 0.0, 1.0), np.nan)
    high = np.where(n > 0, np.clip(centre + half, 0.0, 1.0), np.nan)
    return low, high


@dataclass
class ChannelReport:
    as_of: pd.Timestamp
    by: str
    rows: pd.DataFrame  # one row per channel
    overall: dict
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        recs = self.rows.astype(object).where(self.rows.notna(), None).to_dict(orient="records")
        return {
            "as_of": self.as_of.isoformat(),
            "by": self.by,
            "channels": [{k: _clean(v) for k, v in r.items()} for r in recs],
            "overall": {k: _clean(v) for k, v in self.overall.items()},
            "notes": list(self.notes),
        }


def _clean(v):
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float):
        return None if np.isnan(v) else round(v, 4)
    return v


def channel_insights(
    history: History,
    *,
    by: str = "lead_source",
    as_of: pd.Timestamp | None = None,
    team: str | None = None,
    config: ChannelConfig | None = None,
) -> ChannelReport:
    """Lead share, win rate (with interval), cycle, value and retained value per ``by`` value.

    ``team`` restricts to the deals owned by that team's reps. Raises ``ValueError`` for an
    unknown ``by`` and ``LookupError`` for an unknown team.
    """
    c = config or ChannelConfig()
    if by not in DIMENSIONS:
        raise ValueError(f"channels by {by!r}: must be one of {', '.join(DIMENSIONS)}")
    as_of = pd.Timestamp(as_of) if as_of is not None else data_as_of(history)
    opp = history.opportunities
    if team is not None:
        teams = history.reps.set_index("rep_id")["team"].astype(str)
        if team not in set(teams):
            raise LookupError(unknown_name("team", team, teams))
        opp = opp[opp["owner_rep_id"].map(teams).eq(team)]
    deals = opp[opp["created_at"] < as_of].copy()
    if by == "region":
        deals["region"] = deals["owner_rep_id"].map(history.reps.set_index("rep_id")["region"])
    if deals.empty:
        raise ValueError(f"no deal was created before {as_of:%Y-%m-%d}")
    deals[by] = deals[by].fillna("(none)").astype(str)
    closed = deals["closed_at"].notna() & (deals["closed_at"] < as_of)
    deals["is_closed"] = closed
    deals["is_won"] = closed & deals["status"].eq("won")
    deals["cycle"] = np.where(
        deals["is_won"], (deals["closed_at"] - deals["created_at"]) / pd.Timedelta(days=1), np.nan
    )
    deals["won_amount"] = np.where(deals["is_won"], deals["amount"].astype(float), np.nan)
    subs, notes = _deal_subscriptions(history, deals, as_of, c)
    if deals[by].nunique() == 1 and deals[by].iloc[0] == "(none)":
        notes.append(f"no {by} is recorded: every deal counts as one channel '(none)'")
    rows = _aggregate(deals, subs, by)
    total = _aggregate(deals.assign(_all="overall"), subs, "_all").iloc[0]
    rows["lead_share"] = rows["leads"] / total["leads"]
    rows["value_share"] = rows["total_value"] / max(float(total["total_value"]), 1e-9)
    low, high = wilson_interval(rows["won"], rows["closed"], c.confidence)
    rows["win_rate_low"], rows["win_rate_high"] = low, high
    overall_rate = float(total["win_rate"])
    rows["win_rate_vs_overall"] = rows["win_rate"] - overall_rate
    rows["flag"], rows["message"] = zip(
        *(_flag(r, overall_rate, c) for r in rows.itertuples()), strict=True
    )
    olow, ohigh = wilson_interval(total["won"], total["closed"], c.confidence)
    overall = {
        "leads": int(total["leads"]),
        "lead_share": 1.0,
        "closed": int(total["closed"]),
        "won": int(total["won"]),
        "win_rate": overall_rate,
        "win_rate_low": float(olow),
        "win_rate_high": float(ohigh),
        "cycle_days": float(total["cycle_days"]),
        "avg_value": float(total["avg_value"]),
        "retained_value_12m": _maybe(total["retained_value_12m"]),
        "retention_12m": _maybe(total["retention_12m"]),
        "value_per_lead": float(total["value_per_lead"]),
    }
    rows = rows.sort_values("leads", ascending=False).reset_index(drop=True)
    keep = [
        by,
        "leads",
        "lead_share",
        "closed",
        "won",
        "win_rate",
        "win_rate_low",
        "win_rate_high",
        "win_rate_vs_overall",
        "cycle_days",
        "avg_value",
        "retained_value_12m",
        "retention_12m",
        "value_per_lead",
        "value_share",
        "flag",
        "message",
    ]
    return ChannelReport(as_of=as_of, by=by, rows=rows[keep], overall=overall, notes=notes)


def _maybe(v) -> float | None:
    return None if pd.isna(v) else float(v)


def _aggregate(deals: pd.DataFrame, subs: pd.DataFrame, by: str) -> pd.DataFrame:
    g = deals.groupby(by, sort=True)
    out = pd.DataFrame(
        {
            "leads": g.size(),
            "closed": g["is_closed"].sum().astype(int),
            "won": g["is_won"].sum().astype(int),
            "cycle_days": g["cycle"].median(),
            "avg_value": g["won_amount"].mean(),
            "won_value": g["won_amount"].sum(),
        }
    )
    out["win_rate"] = out["won"] / out["closed"].replace(0, np.nan)
    if subs.empty:
        out["retained_value_12m"] = np.nan
        out["retention_12m"] = np.nan
        out["subscription_value"] = 0.0
    else:
        key = deals.set_index("opportunity_id")[by]
        s = subs.assign(_key=key.reindex(subs["opportunity_id"]).to_numpy())
        per = {k: _retained_12m(grp) for k, grp in s.groupby("_key")}
        out["retained_value_12m"] = [per.get(k, (np.nan, np.nan))[0] for k in out.index]
        out["retention_12m"] = [per.get(k, (np.nan, np.nan))[1] for k in out.index]
        # Value a won deal brings with its subscription, counted for the deals that have one.
        with_sub = s.groupby("_key")["opportunity_id"].nunique().reindex(out.index).fillna(0)
        out["subscription_value"] = np.nan_to_num(out["retained_value_12m"]) * with_sub
    out["total_value"] = out["won_value"] + out["subscription_value"]
    out["value_per_lead"] = out["total_value"] / out["leads"]
    return out.rename_axis(by).reset_index()


def _deal_subscriptions(
    history: History, deals: pd.DataFrame, as_of: pd.Timestamp, c: ChannelConfig
) -> tuple[pd.DataFrame, list[str]]:
    """Subscriptions started by the won deals: same account and product line, started within
    ``subscription_match_days`` of the win. Columns opportunity_id, monthly_value, months
    (observed life, censored at as_of) and ended (bool)."""
    cols = ["opportunity_id", "monthly_value", "months", "ended"]
    sub = history.subscriptions
    if sub is None or sub.empty:
        return pd.DataFrame(columns=cols), ["no subscriptions table: retained value is blank"]
    won = deals[deals["is_won"]][["opportunity_id", "account_id", "product_line", "closed_at"]]
    s = sub[sub["started_at"] < as_of][
        ["account_id", "product_line", "started_at", "ended_at", "monthly_value"]
    ]
    if won.empty or s.empty:
        return pd.DataFrame(columns=cols), []
    left = won.assign(_t=won["closed_at"].astype("datetime64[ns]")).sort_values("_t")
    right = s.assign(_t=s["started_at"].astype("datetime64[ns]")).sort_values("_t")
    left["product_line"] = left["product_line"].astype(str)
    right["product_line"] = right["product_line"].astype(str)
    m = pd.merge_asof(
        left,
        right.drop(columns="started_at"),
        on="_t",
        by=["account_id", "product_line"],
        direction="forward",
        tolerance=pd.Timedelta(days=c.subscription_match_days),
    ).dropna(subset=["monthly_value"])
    m = m.assign(started_at=m["_t"])
    ended = m["ended_at"].notna() & (m["ended_at"] < as_of)
    stop = m["ended_at"].where(ended, as_of)
    months = (stop - m["started_at"]) / pd.Timedelta(days=30.4375)
    out = pd.DataFrame(
        {
            "opportunity_id": m["opportunity_id"].to_numpy(),
            "monthly_value": m["monthly_value"].astype(float).to_numpy(),
            "months": months.clip(lower=0).to_numpy(),
            "ended": ended.to_numpy(),
        }
    )
    return out, []


def kaplan_meier(durations: np.ndarray, ended: np.ndarray, at: np.ndarray) -> np.ndarray:
    """Survival S(t) at each of ``at`` from right-censored durations (Kaplan-Meier)."""
    d = np.asarray(durations, dtype=float)
    e = np.asarray(ended, dtype=bool)
    times = np.unique(d[e])
    surv = np.ones(len(times))
    s = 1.0
    for i, t in enumerate(times):
        at_risk = np.sum(d >= t)
        deaths = np.sum((d == t) & e)
        if at_risk > 0:
            s *= 1.0 - deaths / at_risk
        surv[i] = s
    idx = np.searchsorted(times, np.asarray(at, dtype=float), side="right") - 1
    return np.where(idx >= 0, surv[np.clip(idx, 0, None)], 1.0) if len(times) else np.ones(len(at))


def _retained_12m(subs: pd.DataFrame) -> tuple[float, float]:
    """(expected subscription value of the first 12 months, share surviving 12 months)."""
    if subs.empty:
        return np.nan, np.nan
    grid = np.arange(0.5, 12.0, 1.0)  # the middle of each of the 12 months
    s = kaplan_meier(subs["months"].to_numpy(), subs["ended"].to_numpy(), grid)
    s12 = float(kaplan_meier(subs["months"].to_numpy(), subs["ended"].to_numpy(), [12.0])[0])
    return float(subs["monthly_value"].mean() * s.sum()), s12


def _flag(r, overall_rate: float, c: ChannelConfig) -> tuple[str | None, str | None]:
    if r.closed < c.min_closed or r.lead_share <= 0 or np.isnan(r.win_rate_low):
        return None, None
    ratio = r.value_share / r.lead_share
    outside = r.win_rate_low > overall_rate or r.win_rate_high < overall_rate
    name = getattr(r, r._fields[1])
    text = (
        f"{name}: {r.lead_share:.0%} of leads but {r.value_share:.0%} of value, win rate"
        f" {r.win_rate:.0%} ({c.confidence:.0%} interval {r.win_rate_low:.0%}-{r.win_rate_high:.0%})"
        f" against {overall_rate:.0%} overall"
    )
    if ratio >= c.flag_ratio and outside and r.win_rate > overall_rate:
        return "under_invested", text + ": give it more budget and lead-generation time"
    if ratio <= 1.0 / c.flag_ratio and outside and r.win_rate < overall_rate:
        return "over_invested", text + ": review its spend, or qualify its leads harder"
    return None, None


def channels_overview(
    history: History,
    *,
    as_of: pd.Timestamp | None = None,
    team: str | None = None,
    config: ChannelConfig | None = None,
) -> dict:
    """The ``channels`` answer of the CLI and the API: per lead source (``channels``, with the
    ``overall`` figures), per product line (``product_lines``) and per owner's region
    (``regions``)."""
    by_source = channel_insights(history, by="lead_source", as_of=as_of, team=team, config=config)
    by_line = channel_insights(history, by="product_line", as_of=as_of, team=team, config=config)
    out = by_source.to_dict()
    out.pop("by")
    out["team"] = team
    out["product_lines"] = by_line.to_dict()["channels"]
    by_region = channel_insights(history, by="region", as_of=as_of, team=team, config=config)
    out["regions"] = by_region.to_dict()["channels"]
    rows = out["channels"] + out["product_lines"] + out["regions"]
    out["flagged"] = [r["message"] for r in rows if r["flag"]]
    return out
