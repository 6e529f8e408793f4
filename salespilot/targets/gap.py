"""Gap attribution: where a team's, region's or product line's expected shortfall against its
target comes from.

The scope is a team or a region (``by``), optionally narrowed to one team's reps in that
region (a manager's view): its reps are the scope's reps, its target their rows of the
``targets`` table, its forecast the cells of those reps, and the norms below are pooled over
them.

A product line (``by="product_line"``, of every rep or one team's) has no target of its own:
its target is its **share** of those reps' target, the line's won value over the 12 months
before the period (or before ``as_of``, if earlier) divided by all their won value then
(:func:`line_share`, shown as ``line_share`` in the JSON); a rep's part is the rep's target
times the rep's own share, scaled to the line's. Everything below is then read through the
line: its booked deals, its forecast cells, its funnel and pipeline (the norms are the line's).

``gap = target - p50``, where ``p50`` is what is already booked in the period plus the P50 of
the forecast of the rest (the same simulation as the targets). The gap is split three ways,
and in each the rows sum to the gap exactly:

* **by rep** - each rep's target minus the rep's expected bookings (booked so far plus the
  rep's share of the team's forecast P50, in proportion to the rep's forecast mean);
* **by segment** (product line, lead source, account industry, account size) - the target
  times the segment's usual share of the team's bookings (won value over the last 12 months)
  minus the segment's expected bookings (open deals by amount, new business by the rep's usual
  mix), so a segment bringing less than its usual share shows a positive amount;
* **by funnel step** - each rep's run rate is a product of factors: new leads x lead-to-
  meeting x meeting-to-demo x demo-to-won x average won amount x the share of the open
  pipeline still on time (not past its expected close). Against the team's norm for the same
  factors (the pooled rates, leads per fully ramped rep scaled by the rep's ramp), the
  shortfall of the run rate splits exactly into one term per factor by the log-mean Divisia
  index (LMDI: ``L(V0, V) x ln(norm / rep)``); over the period's months that is money. What
  the funnel does not explain - the target asking more than the team's norm pace, or this
  period's pipeline timing - is the row ``target_above_norm``.

Positive amounts add to the shortfall, negative ones offset it. The funnel rates are those of
:func:`~salespilot.targets.activity.funnel_rates`, the same as the activity plan.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from salespilot.features.history import History
from salespilot.features.names import unknown_name
from salespilot.features.pit import data_as_of, smoothed_rate
from salespilot.targets.activity import funnel_rates
from salespilot.targets.forecast import (
    ForecastConfig,
    forecast_with,
    ramp_factor,
    tenure_months,
)
from salespilot.targets.modelled import Scorer
from salespilot.targets.periods import Period
from salespilot.targets.pipeline import open_pipeline

log = logging.getLogger(__name__)

SEGMENTS = ("product_line", "lead_source", "industry", "account_size")
FUNNEL = ("new_leads", "lead_to_meeting", "meeting_to_demo", "demo_to_won", "deal_size",
          "slipping")  # fmt: skip
SIZE_BANDS = ((0, 50, "1-49"), (50, 250, "50-249"), (250, 1000, "250-999"),
              (1000, np.inf, "1000+"))  # fmt: skip


@dataclass(frozen=True)
class GapConfig:
    lookback_days: int = 365  # the funnel cohort, as in the activity plan
    settle_days: int = 30
    on_time_prior_deals: float = 5.0
    ramp_months: float = 6.0
    mix_months: int = 12  # the window of a segment's usual share of bookings


@dataclass
class GapReport:
    period: Period
    scope: str
    by: str
    as_of: pd.Timestamp
    target: float
    booked: float
    p50: float
    causes: pd.DataFrame  # dimension, key, amount, action
    reps: pd.DataFrame  # per rep: factors, norm, target, expected
    target_source: str
    notes: list[str] = field(default_factory=list)
    line_share: LineShare | None = None  # a product line's scope: its share of the target

    @property
    def gap(self) -> float:
        return self.target - self.p50

    def to_dict(self) -> dict:
        causes = self.causes.astype(object).where(self.causes.notna(), None)
        return {
            "period": self.period.label,
            "scope": self.scope,
            "by": self.by,
            "as_of": self.as_of.isoformat(),
            "target": round(self.target, 2),
            "target_source": self.target_source,
            "booked": round(self.booked, 2),
            "p50": round(self.p50, 2),
            "gap": round(self.gap, 2),
            "causes": [
                {k: (round(v, 2) if isinstance(v, float) else v) for k, v in r.items()}
                for r in causes.to_dict(orient="records")
            ],
            "notes": list(self.notes),
            "line_share": None if self.line_share is None else self.line_share.to_dict(),
        }


SCOPES = ("team", "region", "product_line")
_KIND = {"team": "team", "region": "region", "product_line": "product line"}


def scope_reps(history: History, scope: str, by: str = "team", team: str | None = None) -> list:
    """The rep ids of a team or a region (``by``), in a region only ``team``'s when given; for
    a product line (``by="product_line"``) every rep, or ``team``'s.

    Raises ``LookupError`` for an unknown team, region or product line, or a team with no rep
    in it."""
    if by not in SCOPES:
        raise ValueError(f"a gap is by {', '.join(SCOPES)}, not {by!r}")
    roster = history.reps
    if by == "product_line":
        lines = history.opportunities["product_line"].dropna().astype(str)
        if scope not in set(lines):
            raise LookupError(unknown_name(_KIND[by], scope, lines))
        if team is None:
            return list(roster["rep_id"])
        teams = roster["team"].astype(str)
        if team not in set(teams):
            raise LookupError(unknown_name("team", team, teams))
        return list(roster.loc[teams == team, "rep_id"])
    col = roster[by].astype(str)
    if scope not in set(col):
        raise LookupError(unknown_name(by, scope, col))
    sel = col == scope
    if team is not None and by != "team":
        sel &= roster["team"].astype(str) == team
        if not sel.any():
            raise LookupError(f"team {team!r} has no rep in {by} {scope!r}")
    return list(roster.loc[sel, "rep_id"])


@dataclass(frozen=True)
class LineShare:
    """A product line's share of its scope's target: the line's won value over the trailing
    ``mix_months`` before the period (or before ``as_of``, if earlier) divided by all the won
    value of the same reps in that window (per rep likewise, for the reps' split)."""

    line: str
    share: float
    line_booked: float
    scope_booked: float
    window_start: pd.Timestamp
    window_end: pd.Timestamp
    scope_target: float | None  # the reps' target the share is taken of (None: target given)
    by_rep: pd.Series  # rep_id -> the rep's own share of their won value in the line

    def to_dict(self) -> dict:
        return {
            "line": self.line,
            "basis": "the line's share of the scope's won value over the trailing window",
            "share": self.share,  # unrounded: target = share x scope_target
            "line_booked": round(self.line_booked, 2),
            "scope_booked": round(self.scope_booked, 2),
            "window_start": self.window_start.isoformat(),
            "window_end": self.window_end.isoformat(),
            "scope_target": None if self.scope_target is None else round(self.scope_target, 2),
        }


def line_share(
    history: History,
    line: str,
    rep_ids: list,
    period: Period,
    as_of: pd.Timestamp,
    config: GapConfig | None = None,
) -> LineShare:
    """The share of ``line`` in the won value of ``rep_ids`` over the trailing window."""
    c = config or GapConfig()
    opp = history.opportunities
    end = min(pd.Timestamp(as_of), period.start)
    start = end - pd.DateOffset(months=c.mix_months)
    won = opp[
        opp["owner_rep_id"].isin(rep_ids)
        & opp["status"].eq("won")
        & (opp["closed_at"] >= start)
        & (opp["closed_at"] < end)
    ]
    in_line = won["product_line"].astype(str).eq(line)
    total = float(won["amount"].sum())
    mine = float(won.loc[in_line, "amount"].sum())
    rep_total = won.groupby("owner_rep_id")["amount"].sum()
    rep_line = won[in_line].groupby("owner_rep_id")["amount"].sum()
    by_rep = (rep_line.reindex(rep_total.index).fillna(0.0) / rep_total).reindex(rep_ids)
    return LineShare(line=line, share=mine / total if total > 0 else 0.0, line_booked=mine,
                     scope_booked=total, window_start=start, window_end=end, scope_target=None,
                     by_rep=by_rep.fillna(0.0))  # fmt: skip


def _line_view(history: History, line: str) -> History:
    """The history seen through one product line: only its opportunities (the other tables
    are read through them)."""
    opp = history.opportunities
    return replace(history, opportunities=opp[opp["product_line"].astype(str).eq(line)])


def gap_attribution(
    history: History,
    scope: str,
    period: Period,
    *,
    by: str = "team",
    team: str | None = None,
    as_of: pd.Timestamp | None = None,
    target: float | None = None,
    scorer: Scorer | None = None,
    forecast_config: ForecastConfig | None = None,
    config: GapConfig | None = None,
) -> GapReport:
    """The gap of ``scope`` (a team, or a region with ``by="region"``, then only ``team``'s
    reps in it when given, or a product line with ``by="product_line"``, then of every rep
    or ``team``'s) in ``period`` against ``target`` (default: the ``targets`` table; for a
    product line its share of the reps' targets, :func:`line_share`).

    Raises ``LookupError`` for an unknown team, region or product line and ``ValueError`` when
    there is no target.
    """
    from salespilot.targets.service import _targets_for, empirical_scorer

    c = config or GapConfig()
    as_of = pd.Timestamp(as_of) if as_of is not None else data_as_of(history)
    rep_ids = scope_reps(history, scope, by, team)
    label = scope if team is None or by == "team" else f"{scope} ({team})"
    full = history
    share = None
    if by == "product_line":
        share = line_share(history, scope, rep_ids, period, as_of, c)
        history = _line_view(history, scope)
    opp = history.opportunities
    booked_until = min(as_of, period.end)
    won_in = opp[
        opp["owner_rep_id"].isin(rep_ids)
        & opp["status"].eq("won")
        & (opp["closed_at"] >= period.start)
        & (opp["closed_at"] < booked_until)
    ]
    booked_r = won_in.groupby("owner_rep_id")["amount"].sum()

    # The forecast of what is still to come, as the targets see it.
    fc_mean_r = pd.Series(dtype=float)
    fc_p50 = 0.0
    cells = pd.DataFrame(columns=["rep_id", "product_line", "pipeline_expected", "new_mean"])
    if as_of < period.end:
        fc = forecast_with(
            scorer or empirical_scorer, full, period, as_of=as_of, config=forecast_config
        )
        mask = fc.cells["rep_id"].isin(rep_ids).to_numpy()
        if share is not None:
            mask = mask & fc.cells["product_line"].astype(str).eq(scope).to_numpy()
        if mask.any():
            fc = fc.restrict(mask)
            total = fc.draws.sum(axis=1)
            fc_p50 = float(np.quantile(total, 0.5))
            cells = fc.cells[["rep_id", "product_line"]].copy()
            cells["pipeline_mean"] = fc.pipeline_draws.mean(axis=0)
            cells["new_mean"] = fc.new_draws.mean(axis=0)
            mean_total = float(total.mean())
            # Scale every cell so the cells sum to the P50 (a sum of medians is no median).
            scale = fc_p50 / mean_total if mean_total > 0 else 0.0
            cells[["pipeline_mean", "new_mean"]] *= scale
            fc_mean_r = cells.groupby("rep_id")[["pipeline_mean", "new_mean"]].sum().sum(axis=1)
    booked = float(booked_r.sum())
    p50 = booked + fc_p50

    # Target: given, else the targets table (per rep).
    table = _targets_for(history, period)
    table_r = table.reindex(rep_ids).dropna() if table is not None else pd.Series(dtype=float)
    if target is None:
        if table_r.empty:
            raise ValueError(
                f"no target for {_KIND[by]} {label!r} in {period}: add a targets table"
                " (rep_id, period_start, period_end, amount) or pass a target"
            )
        target = float(table_r.sum())
        target_source = "targets table"
        if share is not None:
            if share.share <= 0:
                raise ValueError(
                    f"product line {label!r} won nothing from {share.window_start.date()} to"
                    f" {share.window_end.date()}, so it has no share of the target: pass a target"
                )
            share = replace(share, scope_target=target)
            target *= share.share
            target_source = "targets table x line share"
    else:
        target_source = "given"
    target = float(target)
    if share is not None:
        # A rep's part of the line's target: the rep's target x the rep's own line share.
        table_r = table_r * share.by_rep.reindex(table_r.index).fillna(0.0)
        table_r = table_r[table_r > 0]

    reps = sorted(set(rep_ids) & (set(fc_mean_r.index) | set(booked_r.index) | set(table_r.index)))
    if share is not None:  # a rep with nothing in the line has no part in its gap
        reps = [r for r in reps if fc_mean_r.get(r, 0.0) > 0 or r in booked_r.index
                or r in table_r.index]  # fmt: skip
    if not reps:
        raise ValueError(f"{by} {label!r} has no rep with a forecast, a booking or a target")
    frame = pd.DataFrame({"rep_id": reps})
    frame["booked"] = booked_r.reindex(reps).fillna(0.0).to_numpy()
    frame["forecast"] = fc_mean_r.reindex(reps).fillna(0.0).to_numpy()
    frame["expected"] = frame["booked"] + frame["forecast"]
    funnel = _funnel(history, frame["rep_id"], rep_ids, as_of, c)
    frame = frame.merge(funnel, on="rep_id", how="left")
    frame["target"] = _split_target(target, table_r.reindex(reps), frame["norm_value"])
    frame["gap"] = frame["target"] - frame["expected"]

    months_per_cohort = (c.lookback_days - c.settle_days) / 30.4375
    to_period = period.months / months_per_cohort
    contrib = _lmdi(frame, to_period)
    contrib["target_above_norm"] = frame["gap"].to_numpy() - contrib.sum(axis=1).to_numpy()

    rows: list[dict] = []
    rows += _rep_rows(frame, contrib, by)
    rows += _funnel_rows(frame, contrib, by)
    rows += _segment_rows(history, rep_ids, cells, won_in, target, as_of, period, c)
    causes = pd.DataFrame(rows, columns=["dimension", "key", "amount", "action"])
    report = GapReport(
        period=period,
        scope=label,
        by=by,
        as_of=as_of,
        target=target,
        booked=booked,
        p50=p50,
        causes=causes,
        reps=frame.join(contrib.add_prefix("gap_")),
        target_source=target_source,
        line_share=share,
    )
    log.info("gap %s %s %s: target %.0f, p50 %.0f, gap %.0f", by, label, period, target, p50,
             report.gap)  # fmt: skip
    return report


# -- the funnel --------------------------------------------------------------------------------


def _funnel(
    history: History, rep_ids: pd.Series, scope_ids: list, as_of: pd.Timestamp, c: GapConfig
) -> pd.DataFrame:
    """Per rep: the six run-rate factors (``f_*``) and the scope's norm for each (``n_*``,
    pooled over the scope's reps ``scope_ids``)."""
    f = funnel_rates(history, as_of, lookback_days=c.lookback_days, settle_days=c.settle_days)
    f = f[f["rep_id"].isin(scope_ids)].set_index("rep_id")
    pooled = f[["leads", "meeting", "demo", "won", "won_amount"]].sum()
    info = history.reps.set_index("rep_id")
    cohort_mid = as_of - pd.Timedelta(days=(c.lookback_days + c.settle_days) / 2)
    ramp = pd.Series(
        ramp_factor(tenure_months(info["hired_at"].reindex(f.index), cohort_mid), c.ramp_months),
        index=f.index,
    )
    ramped = ramp >= 1.0
    base = f.loc[ramped, "leads"] if ramped.any() else f["leads"]
    norm_leads = float(base.mean()) if len(base) else 0.0

    def ratio(num: float, den: float) -> float:
        return (num + 1.0) / (den + 2.0)

    on_time, team_on_time = _on_time(history, list(f.index), as_of, c)
    out = pd.DataFrame(index=pd.Index(rep_ids, name="rep_id"))
    out["f_new_leads"] = f["leads"].reindex(out.index)
    out["n_new_leads"] = norm_leads * ramp.reindex(out.index)
    out["f_lead_to_meeting"] = f["lead_to_meeting"].reindex(out.index)
    out["n_lead_to_meeting"] = ratio(pooled["meeting"], pooled["leads"])
    out["f_meeting_to_demo"] = f["meeting_to_demo"].reindex(out.index)
    out["n_meeting_to_demo"] = ratio(pooled["demo"], pooled["meeting"])
    out["f_demo_to_won"] = f["demo_to_won"].reindex(out.index)
    out["n_demo_to_won"] = ratio(pooled["won"], pooled["demo"])
    out["f_deal_size"] = f["avg_won_amount"].reindex(out.index)
    team_size = pooled["won_amount"] / pooled["won"] if pooled["won"] > 0 else np.nan
    out["n_deal_size"] = team_size
    out["f_slipping"] = on_time.reindex(out.index).fillna(team_on_time)
    out["n_slipping"] = team_on_time
    out = out.fillna(0.0)
    factors = [f"f_{k}" for k in FUNNEL]
    norms = [f"n_{k}" for k in FUNNEL]
    out["value"] = out[factors].prod(axis=1)
    out["norm_value"] = out[norms].prod(axis=1)
    return out.reset_index()


def _on_time(
    history: History, reps: list[str], as_of: pd.Timestamp, c: GapConfig
) -> tuple[pd.Series, float]:
    """Share of each rep's open deals not yet past their expected close (smoothed to the
    team's); slipping deals are those whose ``expected_close_at`` is before ``as_of``."""
    deals = open_pipeline(history, as_of)
    deals = deals[deals["owner_rep_id"].isin(reps)]
    expected = history.opportunities.set_index("opportunity_id")["expected_close_at"]
    late = expected.reindex(deals["opportunity_id"]).to_numpy() < as_of.to_datetime64()
    deals = deals.assign(on_time=~late)
    if deals.empty:
        return pd.Series(dtype=float), 1.0
    team_rate = float(deals["on_time"].mean())
    g = deals.groupby("owner_rep_id")["on_time"].agg(["sum", "count"])
    rate = smoothed_rate(g["sum"].to_numpy(float), g["count"].to_numpy(float), team_rate,
                         c.on_time_prior_deals)  # fmt: skip
    return pd.Series(rate, index=g.index), team_rate


def _log_mean(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The logarithmic mean L(a, b) = (a - b) / (ln a - ln b), L(a, a) = a."""
    a = np.asarray(a, float)
    b = np.asarray(b, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = (a - b) / (np.log(a) - np.log(b))
    return np.where(np.isclose(a, b), a, out)


def _lmdi(frame: pd.DataFrame, to_period: float) -> pd.DataFrame:
    """Per rep and factor: the money the factor's distance from the norm costs in the period.

    Sums over factors to ``(norm_value - value) x to_period`` exactly. Factors at zero (a rep
    with no leads at all) are floored at a tiny share of the norm so the logarithms exist.
    """
    out = pd.DataFrame(index=frame.index)
    x = np.column_stack([frame[f"f_{k}"].to_numpy(float) for k in FUNNEL])
    n = np.column_stack([frame[f"n_{k}"].to_numpy(float) for k in FUNNEL])
    ok = (n > 0).all(axis=1)
    x = np.where(n > 0, np.maximum(x, 1e-6 * np.where(n > 0, n, 1.0)), 1.0)
    n = np.where(n > 0, n, 1.0)
    v, v0 = x.prod(axis=1), n.prod(axis=1)
    weight = _log_mean(v0, v) * to_period
    for j, k in enumerate(FUNNEL):
        out[k] = np.where(ok, weight * np.log(n[:, j] / x[:, j]), 0.0)
    return out


def _split_target(total: float, table: pd.Series, norm_value: pd.Series) -> np.ndarray:
    """Per-rep targets: the table's where it has them (scaled to ``total``), else by norm."""
    t = table.to_numpy(float)
    if np.isfinite(t).any() and np.nansum(t) > 0:
        t = np.nan_to_num(t)
        return t * (total / t.sum())
    w = np.clip(norm_value.to_numpy(float), 0.0, None)
    return w * (total / w.sum()) if w.sum() > 0 else np.full(len(w), total / max(len(w), 1))


# -- rows and actions --------------------------------------------------------------------------

NORM_OF = {"team": "the team's", "region": "the region's", "product_line": "the line's"}


def norm_of(by: str) -> str:
    """Whose norm a scope's rows compare with: "the team's", "the region's", "the line's"."""
    return NORM_OF[by]


_FACTOR_WORDS = {
    "new_leads": ("new leads", "{x:.0f} leads in the last year against {n:.0f} for {norm} norm",
                  "book prospecting time and ask for referrals each week"),
    "lead_to_meeting": ("lead to meeting", "{x:.0%} of leads reach a meeting against"
                        " {norm} {n:.0%}", "call each new lead within a day and book the meeting"),
    "meeting_to_demo": ("meeting to demo", "{x:.0%} of meetings lead to a demo against"
                        " {norm} {n:.0%}", "qualify the need in the first meeting and propose"
                        " the demo there"),
    "demo_to_won": ("demo to won", "demos convert at {x:.0%} against {norm} {n:.0%}",
                    "pair with a senior on the next three demos"),
    "deal_size": ("deal size", "won deals average {x:,.0f} against {norm} {n:,.0f}",
                  "lead with the full package and review discounting"),
    "slipping": ("deals slipping", "{s:.0%} of open deals are past their expected close"
                 " against {norm} {ns:.0%}", "re-date or close the overdue deals, each"
                 " with a next step"),
}  # fmt: skip


def _factor_text(k: str, x: float, n: float, by: str) -> tuple[str, str]:
    _, what, action = _FACTOR_WORDS[k]
    return what.format(x=x, n=n, s=1 - x, ns=1 - n, norm=norm_of(by)), action


def _rep_rows(frame: pd.DataFrame, contrib: pd.DataFrame, by: str) -> list[dict]:
    norm = norm_of(by)
    rows = []
    funnel_only = contrib[list(FUNNEL)]
    for i, r in frame.iterrows():
        worst = funnel_only.loc[i].idxmax()
        if r["gap"] <= 0:
            text = f"{r['rep_id']}: on course, {-r['gap']:,.0f} ahead of the target"
        elif funnel_only.loc[i, worst] > 0:
            what, action = _factor_text(worst, r[f"f_{worst}"], r[f"n_{worst}"], by)
            text = f"{r['rep_id']}: {what}: {action}"
        elif contrib.loc[i, "target_above_norm"] > 0:
            text = f"{r['rep_id']}: the funnel runs at {norm} norm; the target asks more"
            text += " than that pace: check the target or add pipeline"
        else:
            text = f"{r['rep_id']}: the pipeline is late for this period: pull deals forward"
        rows.append({"dimension": "rep", "key": r["rep_id"], "amount": float(r["gap"]),
                     "action": text})  # fmt: skip
    return rows


def _funnel_rows(frame: pd.DataFrame, contrib: pd.DataFrame, by: str) -> list[dict]:
    norm = norm_of(by)
    rows = []
    for k in (*FUNNEL, "target_above_norm"):
        amount = float(contrib[k].sum())
        if k == "target_above_norm":
            action = (
                f"the target asks more than {norm} norm pace: add pipeline or revisit it"
                if amount > 0
                else "the funnel's shortfall is partly covered by this period's pipeline"
            )
            rows.append({"dimension": "funnel", "key": k, "amount": amount, "action": action})  # fmt: skip
            continue
        worst = contrib[k].idxmax()
        r = frame.loc[worst]
        if contrib.loc[worst, k] > 0:
            what, action = _factor_text(k, r[f"f_{k}"], r[f"n_{k}"], by)
            text = f"{r['rep_id']}: {what}: {action}"
        else:
            text = f"{_FACTOR_WORDS[k][0]} at or above {norm} norm"
        rows.append({"dimension": "funnel", "key": k, "amount": amount, "action": text})  # fmt: skip
    return rows


def _size_band(employees: pd.Series) -> pd.Series:
    e = pd.to_numeric(employees, errors="coerce")
    out = pd.Series("unknown", index=e.index, dtype=object)
    for lo, hi, label in SIZE_BANDS:
        out[(e >= lo) & (e < hi)] = label
    return out


def _segment_columns(history: History, deals: pd.DataFrame) -> pd.DataFrame:
    acc = history.accounts.set_index("account_id")
    out = deals.copy()
    out["industry"] = acc["industry"].reindex(out["account_id"]).fillna("unknown").to_numpy()
    out["account_size"] = _size_band(acc["employees"].reindex(out["account_id"])).to_numpy()
    for s in SEGMENTS:
        out[s] = out[s].fillna("unknown").astype(str)
    return out


def _segment_rows(
    history: History,
    rep_ids: list[str],
    cells: pd.DataFrame,
    won_in: pd.DataFrame,
    target: float,
    as_of: pd.Timestamp,
    period: Period,
    c: GapConfig,
) -> list[dict]:
    """Per segment: target x usual share of the team's bookings - expected bookings."""
    opp = history.opportunities
    # The usual mix: the 12 months before the period (or before now, if earlier).
    mix_to = min(as_of, period.start)
    usual = opp[
        opp["owner_rep_id"].isin(rep_ids)
        & opp["status"].eq("won")
        & (opp["closed_at"] >= mix_to - pd.DateOffset(months=c.mix_months))
        & (opp["closed_at"] < mix_to)
    ]
    usual = _segment_columns(history, usual)
    booked = _segment_columns(history, won_in)
    pipe = open_pipeline(history, as_of)
    pipe = pipe[pipe["owner_rep_id"].isin(rep_ids)]
    pipe = _segment_columns(
        history,
        pipe.merge(opp[["opportunity_id", "account_id", "lead_source"]], on="opportunity_id"),
    )
    rows = []
    for seg in SEGMENTS:
        share = usual.groupby(seg)["amount"].sum()
        share = share / share.sum() if share.sum() > 0 else share
        expected = booked.groupby(seg)["amount"].sum()
        if len(cells):
            expected = expected.add(_pipeline_by(pipe, cells, seg), fill_value=0.0)
            expected = expected.add(_new_by(usual, cells, seg), fill_value=0.0)
        keys = sorted(set(share.index) | set(expected.index))
        share = share.reindex(keys).fillna(0.0)
        expected = expected.reindex(keys).fillna(0.0)
        amount = target * share - expected
        for k in keys:
            a = float(amount[k])
            if a > 0:
                text = (f"{seg} {k}: expected {expected[k]:,.0f} against its usual"
                        f" {share[k]:.0%} of bookings ({target * share[k]:,.0f} of the target):"
                        f" build {k} pipeline")  # fmt: skip
            else:
                text = f"{seg} {k}: ahead of its usual {share[k]:.0%} share of bookings"
            rows.append({"dimension": seg, "key": str(k), "amount": a, "action": text})  # fmt: skip
    return rows


def _pipeline_by(pipe: pd.DataFrame, cells: pd.DataFrame, seg: str) -> pd.Series:
    """Each rep x line cell's expected pipeline bookings, split over its open deals by amount."""
    if pipe.empty:
        return pd.Series(dtype=float)
    cell = cells.set_index(["rep_id", "product_line"])["pipeline_mean"]
    amt = pipe.groupby(["owner_rep_id", "product_line"])["amount"].transform("sum")
    key = pd.MultiIndex.from_arrays([pipe["owner_rep_id"], pipe["product_line"]])
    value = cell.reindex(key).to_numpy() * pipe["amount"].to_numpy() / amt.replace(0, np.nan)
    return pd.Series(np.nan_to_num(value.to_numpy()), index=pipe.index).groupby(pipe[seg]).sum()


def _new_by(usual: pd.DataFrame, cells: pd.DataFrame, seg: str) -> pd.Series:
    """Each cell's expected new business, split by the rep's usual mix within the line (else
    the team's)."""
    out: dict[str, float] = {}
    team_mix = usual.groupby(["product_line", seg])["amount"].sum()
    rep_mix = usual.groupby(["owner_rep_id", "product_line", seg])["amount"].sum()
    for r in cells.itertuples():
        if r.new_mean <= 0:
            continue
        mix = None
        if (r.rep_id, r.product_line) in rep_mix.index.droplevel(2):
            mix = rep_mix.loc[(r.rep_id, r.product_line)]
        elif r.product_line in team_mix.index.get_level_values(0):
            mix = team_mix.loc[r.product_line]
        if seg == "product_line" or mix is None or mix.sum() <= 0:
            key = r.product_line if seg == "product_line" else "unknown"
            out[key] = out.get(key, 0.0) + r.new_mean
            continue
        for k, v in (mix / mix.sum()).items():
            out[k] = out.get(k, 0.0) + r.new_mean * v
    return pd.Series(out, dtype=float)
