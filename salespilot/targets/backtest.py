"""Replay past periods: the targets each method would have set with only the data before the
period, against what each rep then booked.

Methods, side by side on the same reps and periods:

* ``salespilot`` - the base quantile of the rep's simulated bookings (this package);
* ``last_year_plus_20`` - 1.2 x what the rep booked in the same period a year earlier; reps
  not employed then get their team's average, ramped by tenure like ours;
* ``even_split`` - the same team total as ``salespilot``, split evenly across the team.

Metrics: ``coverage`` (share of rep-periods reaching the target - a P50 base should be reached
about half the time), ``mape`` (mean absolute percentage error of target vs booked, over
rep-periods that booked something; scikit-learn's definition) and ``attainment_spread`` (the
inter-quartile range of booked / target across reps, averaged over periods). Reps who left
during a period are not scored: their target was never played out.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import mean_absolute_percentage_error

from salespilot.features.history import History
from salespilot.features.pit import data_as_of
from salespilot.targets.allocation import TargetConfig, recommend_targets
from salespilot.targets.forecast import ForecastConfig, forecast_with, ramp_factor
from salespilot.targets.forecast import tenure_months as _tenure
from salespilot.targets.modelled import Scorer
from salespilot.targets.periods import Period, period_containing

log = logging.getLogger(__name__)

METHODS = ("salespilot", "last_year_plus_20", "even_split")


@dataclass
class BacktestResult:
    periods: list[str]
    rows: pd.DataFrame  # one row per rep x period: targets per method and booked
    metrics: dict[str, dict[str, float]]
    forecasts: dict[str, dict] = field(default_factory=dict)  # period -> unit draws
    p_win_source: str = "empirical"
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        out: dict = {m: dict(self.metrics[m], periods=len(self.periods)) for m in METHODS}
        out["periods"] = list(self.periods)
        out["reps_scored"] = int(self.rows["rep_id"].nunique())
        out["rep_periods"] = len(self.rows)
        out["p_win_source"] = self.p_win_source
        out["notes"] = list(self.notes)
        return out


def replay_periods(history: History, n: int, kind: str = "quarter") -> list[Period]:
    """The ``n`` latest complete periods before the end of the history (oldest first)."""
    # A period counts as complete when the data reach (to within two days) its end: a demo or
    # export cut at midnight of the last day still replays its quarter.
    last = period_containing(data_as_of(history) + pd.Timedelta(days=2), kind).shift(-1)
    return [last.shift(-k) for k in range(n - 1, -1, -1)]


def booked(history: History, period: Period, *, by: str = "rep", rep_ids=None) -> pd.Series:
    """Won amount closed inside ``period``, per ``by`` unit (rep, team, region, product line
    or company; a deal's team and region are its owner's), optionally of ``rep_ids``' deals."""
    opp = history.opportunities
    won = opp[
        (opp["status"] == "won")
        & (opp["closed_at"] >= period.start)
        & (opp["closed_at"] < period.end)
    ]
    if rep_ids is not None:
        won = won[won["owner_rep_id"].isin(list(rep_ids))]
    if by == "rep":
        return won.groupby("owner_rep_id")["amount"].sum()
    if by == "product_line":
        return won.groupby(won["product_line"].astype(str))["amount"].sum()
    if by == "company":
        return pd.Series({"company": float(won["amount"].sum())})
    if by not in ("team", "region"):
        raise ValueError(f"booked by rep, team, region, product_line or company, not {by!r}")
    unit = history.reps.set_index("rep_id")[by].astype(str).reindex(won["owner_rep_id"])
    return won["amount"].groupby(unit.to_numpy()).sum()


def _last_year_plus_20(history: History, period: Period, reps: pd.DataFrame, ramp: float):
    """1.2 x the same period a year earlier; when the history does not reach back that far,
    1.2 x the pace of the months it has (bookings per month x the period's months)."""
    year_ago = period.shift(-(12 // period.months))
    first = history.opportunities["created_at"].min()
    if year_ago.start >= first:
        prior = booked(history, year_ago)
        full = reps["hired_at"] <= year_ago.start
    else:
        window = Period(first.to_period("M").to_timestamp() + pd.DateOffset(months=1), 1)
        months = (
            (period.start.year - window.start.year) * 12 + period.start.month - window.start.month
        )
        window = Period(window.start, max(months, 1))
        prior = booked(history, window) * period.months / window.months
        full = reps["hired_at"] <= window.start
    value = pd.Series(np.nan, index=reps["rep_id"].to_numpy())
    value[full.to_numpy()] = (
        1.2 * prior.reindex(reps.loc[full, "rep_id"], fill_value=0.0).to_numpy()
    )
    team = reps["team"].to_numpy()
    team_mean = pd.Series(value.to_numpy()).groupby(team).mean()
    fallback = team_mean.reindex(team).fillna(np.nanmean(value) if full.any() else 0.0).to_numpy()
    ramped = fallback * ramp_factor(_tenure(reps["hired_at"], period.start), ramp)
    return np.where(np.isnan(value.to_numpy()), ramped, value.to_numpy())


def run_backtest(
    history: History,
    *,
    periods: int = 4,
    kind: str = "quarter",
    forecast_config: ForecastConfig | None = None,
    target_config: TargetConfig | None = None,
    scorer: Scorer | None = None,
    scorer_for: Callable[[Period], Scorer] | None = None,
    progress: Callable[[str], None] | None = None,
) -> BacktestResult:
    """Replay the ``periods`` latest complete periods and score the three methods.

    ``scorer`` gives p_win of the deals open at each period's start (default: empirical);
    ``scorer_for(period)`` instead builds one scorer per period (e.g. a model whose label
    horizon is that period).
    """
    from salespilot.targets.service import empirical_scorer

    forecast_config = forecast_config or ForecastConfig()
    target_config = target_config or TargetConfig()
    scorer = scorer or empirical_scorer
    replay = replay_periods(history, periods, kind)
    first_data = history.opportunities["created_at"].min()
    if replay[0].start - first_data < pd.Timedelta(days=90):
        raise ValueError(
            f"the history starts {first_data:%Y-%m-%d}: replaying {periods} {kind}s needs at "
            f"least three months of data before {replay[0].start:%Y-%m-%d}"
        )
    frames, forecasts = [], {}
    notes: list[str] = []
    for period in replay:
        if progress:
            progress(period.label)
        as_of = period.start
        period_scorer = scorer_for(period) if scorer_for is not None else scorer
        fc = forecast_with(period_scorer, history, period, as_of=as_of, config=forecast_config)
        plan = recommend_targets(fc, by="rep", config=target_config)
        units = plan.units.set_index("unit")
        reps = history.reps.set_index("rep_id").loc[units.index].reset_index()
        # Not scored: reps who left before the period ended (their target never played out).
        stayed = (reps["left_at"].isna() | (reps["left_at"] >= period.end)).to_numpy()
        actual = booked(history, period).reindex(units.index, fill_value=0.0).to_numpy()
        sp = units["base"].to_numpy()
        ly = _last_year_plus_20(history, period, reps, forecast_config.ramp_months)
        team = units["team"].to_numpy()
        team_total = pd.Series(sp).groupby(team).transform("sum").to_numpy()
        team_size = pd.Series(sp).groupby(team).transform("size").to_numpy()
        frames.append(
            pd.DataFrame(
                {
                    "period": period.label,
                    "rep_id": units.index,
                    "team": team,
                    "region": units["region"].to_numpy(),
                    "tenure_months": units["tenure_months"].to_numpy(),
                    "booked": actual,
                    "salespilot": sp,
                    "stretch": units["stretch"].to_numpy(),
                    "last_year_plus_20": ly,
                    "even_split": team_total / team_size,
                    "p10": units["p10"].to_numpy(),
                    "p90": units["p90"].to_numpy(),
                }
            )[stayed]
        )
        forecasts[period.label] = {
            by: dict(zip(*fc.unit_draws(by), strict=False)) for by in ("company", "team", "rep")
        }
        forecasts[period.label]["_draws"] = {
            by: fc.unit_draws(by) for by in ("company", "team", "rep")
        }
    rows = pd.concat(frames, ignore_index=True)
    metrics = {m: score_method(rows, m) for m in METHODS}
    return BacktestResult(
        periods=[p.label for p in replay],
        rows=rows,
        metrics=metrics,
        forecasts=forecasts,
        p_win_source=fc.p_win_source,
        notes=notes,
    )


def score_method(rows: pd.DataFrame, method: str) -> dict[str, float]:
    """coverage, mape, attainment_spread (and wape) of one method's targets."""
    target = rows[method].to_numpy(float)
    actual = rows["booked"].to_numpy(float)
    coverage = float(np.mean(actual >= target))
    nz = actual > 0
    mape = float(mean_absolute_percentage_error(actual[nz], target[nz])) if nz.any() else np.nan
    wape = float(np.abs(actual - target).sum() / max(actual.sum(), 1e-9))
    spreads = []
    for _, g in rows.assign(_t=target, _a=actual).groupby("period"):
        ok = g["_t"] > 0
        att = g.loc[ok, "_a"] / g.loc[ok, "_t"]
        if len(att) >= 2:
            spreads.append(float(att.quantile(0.75) - att.quantile(0.25)))
    return {
        "coverage": round(coverage, 4),
        "mape": round(mape, 4),
        "attainment_spread": round(float(np.mean(spreads)) if spreads else np.nan, 4),
        "wape": round(wape, 4),
    }


def fan_charts(result: BacktestResult, out_dir: Path, *, by: tuple[str, ...] = ("company", "team")):
    """One PNG per unit: the replayed periods' forecast bands and what was booked."""
    from salespilot.targets.plots import fan_chart

    paths = []
    rows = result.rows
    for level in by:
        col = {"company": None, "team": "team", "rep": "rep_id"}[level]
        units = ["company"] if col is None else sorted(rows[col].unique())
        for unit in units:
            draws, actual, base, lastyear = [], [], [], []
            for p in result.periods:
                labels, d = result.forecasts[p]["_draws"][level]
                draws.append(d[:, labels.index(unit)] if unit in labels else None)
                sub = (
                    rows[rows["period"] == p]
                    if col is None
                    else rows[(rows["period"] == p) & (rows[col] == unit)]
                )
                actual.append(float(sub["booked"].sum()) if len(sub) else None)
                base.append(float(sub["salespilot"].sum()) if len(sub) else None)
                lastyear.append(float(sub["last_year_plus_20"].sum()) if len(sub) else None)
            path = out_dir / level / f"{unit}.png"
            paths.append(
                fan_chart(
                    path,
                    title=f"{'company' if col is None else f'{level} {unit}'}: forecast "
                    "(bands) vs booked; markers: sum of the reps' targets",
                    labels=result.periods,
                    draws=draws,
                    actual=actual,
                    targets={"salespilot base": base, "last year + 20%": lastyear},
                )
            )
    return paths


def log_to_mlflow(
    result: BacktestResult,
    *,
    tracking_uri: str,
    artifacts_dir: Path,
    params: dict,
    chart_levels: tuple[str, ...] = ("company", "team"),
):
    """One run in the ``targets_backtest`` experiment: metrics per method, a fan chart per
    unit of ``chart_levels`` (company, team, rep), and the per-rep rows as CSV."""
    import tempfile

    import mlflow

    from salespilot.training.tracking import tagged_experiment

    mlflow.set_tracking_uri(tracking_uri)
    location = Path(artifacts_dir).resolve().as_uri()
    exp_id = tagged_experiment(mlflow.MlflowClient(tracking_uri), "targets_backtest", location)
    mlflow.set_experiment(experiment_id=exp_id)
    with mlflow.start_run(run_name="backtest " + " ".join(result.periods)) as run:
        mlflow.log_params({**params, "periods": ",".join(result.periods)})
        for method, m in result.metrics.items():
            mlflow.log_metrics({f"{method}_{k}": v for k, v in m.items() if v == v})
        with tempfile.TemporaryDirectory() as tmp:
            for path in fan_charts(result, Path(tmp), by=chart_levels):
                mlflow.log_artifact(str(path), artifact_path=f"fan_charts/{path.parent.name}")
            csv = Path(tmp) / "backtest_rows.csv"
            result.rows.to_csv(csv, index=False)
            mlflow.log_artifact(str(csv))
        return run.info.run_id
