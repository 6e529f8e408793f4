"""The /v1 targets routes: recommendations for managers and a team's process health.

Routes only parse, authorise and call :mod:`salespilot.targets.service`. A manager
sees their own team only (the forecast and any top-down number are the team's); an admin any
team or the whole company; a rep token gets 403. Results are memoised per serving state, so a
reload (new data or models) recomputes them.
"""

from __future__ import annotations

import dataclasses
from typing import Annotated, Literal

import numpy as np
import pandas as pd
from fastapi import APIRouter, Path
from pydantic import BaseModel, ConfigDict, Field, model_validator

from salespilot.serving.deps import Holder, LimitedUser, State, scope_team
from salespilot.serving.errors import ApiError
from salespilot.serving.limits import memo_limited
from salespilot.serving.schemas import BODY_ERRORS, error_responses

router = APIRouter(
    prefix="/v1",
    tags=["targets"],
    responses=error_responses(
        401, 403, 404, 422, 429, 503, e404="Unknown team", e503="Data not loaded yet"
    ),
)


# -- schemas -----------------------------------------------------------------------------------


class TargetsRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    period: str = Field(..., description="A quarter like 2026-Q1 or a month like 2026-03.",
                        examples=["2026-Q3"], max_length=16)  # fmt: skip
    unit: Literal["rep", "team", "region", "product_line"] = Field(
        "rep", description="The unit each target is set for."
    )
    team: str | None = Field(
        None, max_length=128, description="Only this team (managers: always their own)."
    )
    top_down: float | None = Field(
        None,
        ge=0,
        allow_inf_nan=False,
        description="A top-down number for the scope, allocated across units.",
    )
    base_quantile: float = Field(0.5, gt=0, lt=1, description="Base target quantile.")
    stretch_quantile: float = Field(0.8, gt=0, lt=1, description="Stretch target quantile.")

    @model_validator(mode="after")
    def _ordered(self) -> TargetsRequest:
        if self.stretch_quantile < self.base_quantile:
            raise ValueError("stretch_quantile must be at least base_quantile")
        return self


class ActivityPlanOut(BaseModel):
    leads_per_week: float
    meetings_per_week: float
    demos_per_month: float
    wins_needed: float
    lead_to_meeting: float
    meeting_to_demo: float
    demo_to_won: float


class TargetUnitOut(BaseModel):
    unit: str
    name: str | None = None
    team: str | None = None
    region: str | None = None
    mean: float
    p10: float
    p50: float
    p90: float
    base: float
    stretch: float
    pipeline_mean: float
    new_business_mean: float
    open_deals: int
    tenure_months: float | None = None
    ramp: float | None = None
    new_hire: bool | None = None
    allocated: float | None = None
    allocated_vs_base: float | None = None
    p_reach_allocated: float | None = None
    activity_plan: ActivityPlanOut | None = None


class TargetsTotalOut(BaseModel):
    mean: float
    p10: float
    p50: float
    p90: float
    base: float
    stretch: float
    sum_of_unit_base: float
    top_down: float | None = None
    supported: float | None = None
    gap: float | None = None
    p_reach_top_down: float | None = None
    allocation_status: str | None = None


class TargetsResponse(BaseModel):
    period: str
    as_of: str
    by: str
    team: str | None = None
    base_quantile: float
    stretch_quantile: float
    p_win_source: str
    total: TargetsTotalOut
    units: list[TargetUnitOut]
    notes: list[str] = []


class HealthAlertItem(BaseModel):
    metric: str
    message: str


class HealthAlert(BaseModel):
    rep_id: str
    metric: str
    weeks_below: int
    latest_ratio: float
    message: str
    look_first: list[HealthAlertItem]


class HealthWeek(BaseModel):
    model_config = ConfigDict(extra="allow")

    week_start: str
    leads: int
    lead_to_meeting: float | None = None
    avg_days_in_stage: float | None = None
    response_hours: float | None = None
    lead_to_meeting_status: str | None = None
    avg_days_in_stage_status: str | None = None
    response_hours_status: str | None = None


class RepHealthWeek(HealthWeek):
    rep_id: str
    name: str | None = None
    reply_share: float | None = None
    plan_leads_per_week: float | None = None
    leads_vs_plan: float | None = None


class HealthResponse(BaseModel):
    team: str
    as_of: str
    weeks: list[str]
    thresholds: dict[str, float]
    thresholds_basis: str = Field(
        "fixed",
        description="team_history: the bounds are the team's own (healthy at the median of "
        "its reps' weeks, warning beyond their worst decile); fixed: the HEALTH_* settings.",
    )
    flagged_reps: list[str]
    alerts: list[HealthAlert]
    team_weeks: list[HealthWeek]
    reps: list[RepHealthWeek]
    notes: list[str] = []


# -- routes ------------------------------------------------------------------------------------


def _state_scorer(state):
    """p_win of the open deals from the state's champion scores, else None (empirical)."""
    win = getattr(state, "win", None)
    if win is None or len(win) == 0:
        return None
    scored = pd.DataFrame({"opportunity_id": np.asarray(win.ids).astype(str), "p_win": win.proba})
    from salespilot.targets.modelled import Scorer
    from salespilot.targets.service import win_horizon_days

    model = state.model("win_probability")
    return Scorer(
        predict=lambda history, as_of: scored,
        source=f"champion v{win.version}" if win.version else "champion",
        horizon_days=win_horizon_days(model),
        version=str(win.version) if win.version else None,
        features=tuple(model.features) if model is not None else (),
    )


@router.post(
    "/targets/recommendations",
    response_model=TargetsResponse,
    summary="Forecast, base and stretch targets, allocation and activity plan",
    responses=error_responses(*BODY_ERRORS),
)
async def recommendations(
    body: TargetsRequest, user: LimitedUser, state: State, holder: Holder
) -> TargetsResponse:
    from salespilot.targets.periods import parse_period
    from salespilot.targets.service import configs_from_settings, recommend

    team = scope_team(user, body.team, state, "Targets")
    try:
        period = parse_period(body.period)
    except ValueError as exc:
        raise ApiError(422, str(exc), code="bad_period") from None
    if period.end <= state.as_of:
        raise ApiError(
            422,
            f"period {period} ended before the data's latest event ({state.as_of:%Y-%m-%d}):"
            " use `salespilot backtest-targets` for past periods.",
            code="period_in_the_past",
        )
    key = ("targets", body.model_dump_json(), team)
    fc, tc, _ = configs_from_settings(holder.settings)
    tc = dataclasses.replace(
        tc, base_quantile=body.base_quantile, stretch_quantile=body.stretch_quantile
    )

    def run() -> dict:
        rec = recommend(
            state.history,
            period,
            by=body.unit,
            as_of=state.as_of,
            top_down=body.top_down,
            team=team,
            scorer=_state_scorer(state),
            forecast_config=fc,
            target_config=tc,
        )
        return rec.to_dict()

    out = await memo_limited(state.cache, key, holder.settings.serving_request_timeout_s, run)
    return TargetsResponse(**out, team=team)


@router.get(
    "/teams/{team}/health",
    response_model=HealthResponse,
    summary="A team's process health per rep and week, with plan alerts",
)
async def team_health(
    team: Annotated[str, Path(min_length=1, max_length=128)],
    user: LimitedUser,
    state: State,
    holder: Holder,
) -> HealthResponse:
    from salespilot.targets.service import configs_from_settings
    from salespilot.targets.service import team_health as compute

    scope_team(user, team, state, "Team health reports")
    key = ("health", team)
    fc, tc, th = configs_from_settings(holder.settings)

    def run() -> dict:
        report = compute(
            state.history,
            team,
            as_of=state.as_of,
            thresholds=th,
            forecast_config=fc,
            target_config=tc,
            # The plan is set at the quarter's start, where the state's scores (as of
            # now) do not apply: the empirical p_win is point-in-time.
        )
        return report.to_dict()

    out = await memo_limited(state.cache, key, holder.settings.serving_request_timeout_s, run)
    return HealthResponse(**out)
