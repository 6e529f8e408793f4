"""Glue for the CLI and the API: score the open pipeline, forecast, set targets, plan activity.

The p_win of open deals comes from a *scorer*: the champion win-probability model when one is
registered, else the history's win rate by stage and age (:func:`empirical_scorer`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from salespilot.features.history import History
from salespilot.features.names import unknown_name
from salespilot.features.pit import data_as_of
from salespilot.targets.activity import activity_plan, funnel_rates
from salespilot.targets.allocation import TargetConfig, TargetPlan, recommend_targets
from salespilot.targets.forecast import Forecast, ForecastConfig, forecast_with
from salespilot.targets.health import HealthReport, HealthThresholds, process_health
from salespilot.targets.modelled import Scorer
from salespilot.targets.periods import Period, period_containing
from salespilot.targets.pipeline import empirical_win_probability, open_pipeline

log = logging.getLogger(__name__)


def _empirical_p_win(history: History, as_of: pd.Timestamp) -> pd.DataFrame:
    return empirical_win_probability(history, as_of, open_pipeline(history, as_of))


#: p_win from the history's win rate by stage and age (no model needed).
empirical_scorer = Scorer(predict=_empirical_p_win, source="empirical")


def champion_scorer(settings=None) -> Scorer | None:
    """A scorer backed by the registered ``win_probability@champion``, or None if unavailable."""
    uri = getattr(settings, "mlflow_tracking_uri", None) or ""
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).exists():
        return None  # no registry yet: do not create an empty one just to look
    try:
        from salespilot.features.deals import deal_rows_as_trained, deal_snapshot
        from salespilot.training import load_model
    except ImportError:
        return None
    try:
        model = load_model("win_probability", alias="champion", settings=settings)
    except Exception as exc:  # registry empty or unreachable: the caller falls back
        log.info("no champion win_probability model (%s); using the empirical scorer", exc)
        return None

    horizon = win_horizon_days(model)

    def score(history: History, as_of: pd.Timestamp) -> pd.DataFrame:
        rows = deal_snapshot(history, as_of, horizon_days=int(horizon))
        rows = deal_rows_as_trained(history, rows, model, horizon_days=int(horizon))
        p = model.predict_proba(rows)
        return pd.DataFrame({"opportunity_id": rows["opportunity_id"].to_numpy(), "p_win": p})

    return Scorer(
        predict=score,
        source=f"champion v{model.version}",
        horizon_days=horizon,
        version=str(model.version),
        features=tuple(model.features),
    )


def win_horizon_days(model: object | None = None) -> float:
    """The horizon of ``model``'s "won within N days" (a loaded win model; the spec's default
    without one)."""
    from salespilot.models.win_probability import SPEC

    return float(SPEC.horizon_of(model))


@dataclass
class Recommendation:
    plan: TargetPlan
    forecast: Forecast
    activity: pd.DataFrame | None

    def to_dict(self) -> dict:
        out = self.plan.to_dict()
        if self.activity is not None:
            acts = self.activity.set_index("unit")
            for u in out["units"]:
                if u["unit"] in acts.index:
                    a = acts.loc[u["unit"]]
                    u["activity_plan"] = {
                        k: round(float(a[k]), 2)
                        for k in (
                            "leads_per_week",
                            "meetings_per_week",
                            "demos_per_month",
                            "wins_needed",
                            "lead_to_meeting",
                            "meeting_to_demo",
                            "demo_to_won",
                        )
                    }
        return out


def recommend(
    history: History,
    period: Period,
    *,
    by: str,
    as_of: pd.Timestamp | None = None,
    top_down: float | None = None,
    team: str | None = None,
    scorer: Scorer | None = None,
    forecast_config: ForecastConfig | None = None,
    target_config: TargetConfig | None = None,
) -> Recommendation:
    """Forecast ``period`` from data before ``as_of`` (default: the end of the history),
    set targets per ``by`` unit (optionally for one ``team`` only) and, for reps, the plan."""
    as_of = pd.Timestamp(as_of) if as_of is not None else data_as_of(history)
    forecast = forecast_with(
        scorer or empirical_scorer, history, period, as_of=as_of, config=forecast_config
    )
    if team is not None:
        mask = forecast.cells["team"] == team
        if not mask.any():
            raise LookupError(f"team {team!r} has no active rep at {period.start:%Y-%m-%d}")
        forecast = forecast.restrict(mask)
    plan = recommend_targets(forecast, by=by, config=target_config, top_down=top_down)
    activity = None
    if by == "rep":
        funnel = funnel_rates(history, as_of)
        column = "allocated" if top_down is not None else "base"
        activity = activity_plan(
            plan.units, funnel, weeks=period.weeks, months=period.months, target_column=column
        )
    return Recommendation(plan=plan, forecast=forecast, activity=activity)


def configs_from_settings(settings) -> tuple[ForecastConfig, TargetConfig, HealthThresholds]:
    """The forecast, target and health knobs of a :class:`~salespilot.settings.Settings`."""
    s = settings
    return (
        ForecastConfig(
            simulations=s.targets_simulations,
            seed=s.targets_seed,
            ramp_months=s.targets_ramp_months,
        ),
        TargetConfig(
            base_quantile=s.targets_base_quantile,
            stretch_quantile=s.targets_stretch_quantile,
            floor_quantile=s.targets_floor_quantile,
            cap_quantile=s.targets_cap_quantile,
            new_hire_months=s.targets_ramp_months,
        ),
        HealthThresholds(
            lead_to_meeting_healthy=s.health_lead_to_meeting_healthy,
            lead_to_meeting_warning=s.health_lead_to_meeting_warning,
            days_in_stage_healthy=s.health_days_in_stage_healthy,
            days_in_stage_warning=s.health_days_in_stage_warning,
            response_hours_healthy=s.health_response_hours_healthy,
            response_hours_warning=s.health_response_hours_warning,
            alert_ratio=s.health_alert_ratio,
            alert_weeks=s.health_alert_weeks,
            basis=s.health_basis,
        ),
    )


def team_health(
    history: History,
    team: str,
    *,
    as_of: pd.Timestamp | None = None,
    thresholds: HealthThresholds | None = None,
    forecast_config: ForecastConfig | None = None,
    target_config: TargetConfig | None = None,
    scorer: Scorer | None = None,
) -> HealthReport:
    """Process health of ``team`` with the plan alert against this quarter's activity plan.

    The plan is what would have been recommended at the start of the quarter containing
    ``as_of`` (or, when the history has a ``targets`` row for the rep and quarter, that
    target run through the rep's funnel).
    """
    as_of = pd.Timestamp(as_of) if as_of is not None else data_as_of(history)
    if team not in set(history.reps["team"].astype(str)):
        raise LookupError(unknown_name("team", team, history.reps["team"].astype(str)))
    quarter = period_containing(as_of - pd.Timedelta(seconds=1), "quarter")
    plan = None
    try:
        rec = recommend(
            history,
            quarter,
            by="rep",
            as_of=quarter.start,
            team=team,
            scorer=scorer,
            forecast_config=forecast_config,
            target_config=target_config,
        )
        units = rec.plan.units
        booked_targets = _targets_for(history, quarter)
        if booked_targets is not None:
            units = units.assign(
                base=booked_targets.reindex(units["unit"]).fillna(units["base"]).to_numpy()
            )
        funnel = funnel_rates(history, quarter.start)
        plan = activity_plan(units, funnel, weeks=quarter.weeks, months=quarter.months)
    except (LookupError, ValueError) as exc:
        log.warning("no activity plan for %s (%s): the plan alert is off", team, exc)
    return process_health(history, team, as_of=as_of, thresholds=thresholds, plan=plan)


def _targets_for(history: History, period: Period) -> pd.Series | None:
    t = history.targets
    if t is None or t.empty:
        return None
    rows = t[
        (t["period_start"] <= period.start) & (t["period_end"] >= period.end - pd.Timedelta(days=1))
    ]
    if rows.empty:
        return None
    return rows.groupby("rep_id")["amount"].sum()


def backtest(
    history: History,
    settings,
    *,
    periods: int = 4,
    p_win: str = "model",
    progress: Callable[[str], None] | None = None,
):
    """The targets backtest as the settings configure it (the CLI and the flow both call this).

    ``p_win="model"`` refits a LightGBM win model on the data before each period (its label
    window is the period); ``"empirical"`` uses the history's win rate by stage and age (fast).
    """
    from salespilot.targets.backtest import run_backtest

    if p_win not in ("model", "empirical"):
        raise ValueError(f"p_win {p_win!r} must be 'model' or 'empirical'")
    forecast_config, target_config, _ = configs_from_settings(settings)
    scorer_for = None
    if p_win == "model":
        from salespilot.targets.modelled import lightgbm_scorer

        def scorer_for(period):
            return lightgbm_scorer(horizon_days=(period.end - period.start).days)

    return run_backtest(
        history,
        periods=periods,
        forecast_config=forecast_config,
        target_config=target_config,
        scorer_for=scorer_for,
        progress=progress,
    )


def log_backtest(result, history: History, settings) -> str:
    """Log a backtest to MLflow (experiment ``targets_backtest``); returns the run id."""
    from salespilot.targets.backtest import log_to_mlflow

    forecast_config, target_config, _ = configs_from_settings(settings)
    return log_to_mlflow(
        result,
        tracking_uri=settings.mlflow_tracking_uri,
        artifacts_dir=settings.mlflow_artifacts_dir,
        params={
            "base_quantile": target_config.base_quantile,
            "simulations": forecast_config.simulations,
            "ramp_months": forecast_config.ramp_months,
            "p_win": result.to_dict()["p_win_source"],
            "data_hash": history.content_hash(),
        },
    )
