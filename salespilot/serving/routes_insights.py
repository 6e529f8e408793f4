"""The /v1 insights routes for managers: which channel pays, where a team's, region's or
product line's gap is.

Routes only parse, authorise and call the plain modules of :mod:`salespilot.targets`. A
manager sees their own team only (in a region: their team's reps there); an admin any team,
region or the whole company; a rep token gets 403. Results are memoised per serving state, so a reload recomputes them.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel

from salespilot.serving.deps import Holder, LimitedUser, State, scope_team
from salespilot.serving.errors import ApiError
from salespilot.serving.limits import memo_limited
from salespilot.serving.schemas import error_responses

router = APIRouter(
    prefix="/v1",
    tags=["insights"],
    responses=error_responses(
        401,
        403,
        404,
        422,
        429,
        503,
        e404="Unknown team, region or product line",
        e503="Data not loaded yet",
    ),
)


class ChannelOut(BaseModel):
    lead_source: str | None = None
    product_line: str | None = None
    region: str | None = None
    leads: int
    lead_share: float
    closed: int
    won: int
    win_rate: float | None
    win_rate_low: float | None
    win_rate_high: float | None
    win_rate_vs_overall: float | None
    cycle_days: float | None
    avg_value: float | None
    retained_value_12m: float | None
    retention_12m: float | None
    value_per_lead: float
    value_share: float
    flag: str | None
    message: str | None


class ChannelsOverallOut(BaseModel):
    leads: int
    lead_share: float
    closed: int
    won: int
    win_rate: float | None
    win_rate_low: float | None
    win_rate_high: float | None
    cycle_days: float | None
    avg_value: float | None
    retained_value_12m: float | None
    retention_12m: float | None
    value_per_lead: float


class ChannelsResponse(BaseModel):
    as_of: str
    team: str | None
    channels: list[ChannelOut]
    overall: ChannelsOverallOut
    product_lines: list[ChannelOut]
    regions: list[ChannelOut]
    flagged: list[str]
    notes: list[str] = []


@router.get(
    "/insights/channels",
    response_model=ChannelsResponse,
    summary="Per lead source, product line, region: share, win rate with interval, cycle, value",
)
async def channels(
    user: LimitedUser,
    state: State,
    holder: Holder,
    team: Annotated[
        str | None, Query(max_length=128, description="Only this team (managers: their own).")
    ] = None,
) -> ChannelsResponse:
    from salespilot.targets.channels import channels_overview

    team = scope_team(user, team, state, "Channel insights")
    key = ("channels", team)

    def run() -> dict:
        return channels_overview(state.history, as_of=state.as_of, team=team)

    out = await memo_limited(state.cache, key, holder.settings.serving_request_timeout_s, run)
    return ChannelsResponse(**out)


class LineShareOut(BaseModel):
    """A product line's share of its reps' target (their won value in the trailing window)."""

    line: str
    basis: str
    share: float
    line_booked: float
    scope_booked: float
    window_start: str
    window_end: str
    scope_target: float | None


class GapCauseOut(BaseModel):
    dimension: str
    key: str
    amount: float
    action: str


class GapResponse(BaseModel):
    period: str
    scope: str
    by: str
    as_of: str
    target: float
    target_source: str
    booked: float
    p50: float
    gap: float
    causes: list[GapCauseOut]
    notes: list[str] = []
    line_share: LineShareOut | None = None


#: the period of every gap route
GapPeriod = Annotated[
    str, Query(max_length=16, description="A quarter like 2026-Q2 or a month like 2026-05.")
]


@router.get(
    "/teams/{team}/gap",
    response_model=GapResponse,
    summary="A team's expected shortfall against target, split by rep, funnel step, segment",
)
async def team_gap(
    team: Annotated[str, Path(min_length=1, max_length=128)],
    user: LimitedUser,
    state: State,
    holder: Holder,
    period: GapPeriod,
    target: Annotated[
        float | None, Query(ge=0, description="The team's target (default: the targets table).")
    ] = None,
) -> GapResponse:
    scope_team(user, team, state, "Gap attributions")
    return await _gap(state, holder, team, "team", None, period, target)


@router.get(
    "/regions/{region}/gap",
    response_model=GapResponse,
    summary="A region's expected shortfall against target (a manager: their team's reps in it)",
)
async def region_gap(
    region: Annotated[str, Path(min_length=1, max_length=128)],
    user: LimitedUser,
    state: State,
    holder: Holder,
    period: GapPeriod,
    team: Annotated[
        str | None,
        Query(max_length=128, description="Only this team's reps in it (managers: their own)."),
    ] = None,
    target: Annotated[
        float | None, Query(ge=0, description="The scope's target (default: the targets table).")
    ] = None,
) -> GapResponse:
    team = scope_team(user, team, state, "Gap attributions")
    regions = set(state.reps["region"].astype(str))
    if region not in regions:
        if user.role != "admin":  # an unknown name outside the scope is the same 403
            raise ApiError(403, f"Region {region!r} has no rep of team {team!r}.",
                           code="forbidden")  # fmt: skip
        raise ApiError(404, f"No region named {region!r}.", code="region_not_found")
    in_region = state.reps[state.reps["region"].astype(str) == region]
    if team is not None and team not in set(in_region["team"].astype(str)):
        raise ApiError(403, f"Region {region!r} has no rep of team {team!r}.", code="forbidden")
    return await _gap(state, holder, region, "region", team, period, target)


@router.get(
    "/product-lines/{product_line}/gap",
    response_model=GapResponse,
    summary="A product line's shortfall against its share of the reps' target (its won value share)",
)
async def product_line_gap(
    product_line: Annotated[str, Path(min_length=1, max_length=128)],
    user: LimitedUser,
    state: State,
    holder: Holder,
    period: GapPeriod,
    team: Annotated[
        str | None,
        Query(max_length=128, description="Only this team's reps (managers: their own)."),
    ] = None,
    target: Annotated[
        float | None,
        Query(ge=0, description="The line's target (default: its share of the targets table)."),
    ] = None,
) -> GapResponse:
    team = scope_team(user, team, state, "Gap attributions")
    lines = set(state.history.opportunities["product_line"].dropna().astype(str))
    if product_line not in lines:
        raise ApiError(404, f"No product line named {product_line!r}.",
                       code="product_line_not_found")  # fmt: skip
    return await _gap(state, holder, product_line, "product_line", team, period, target)


async def _gap(state, holder, scope: str, by: str, team: str | None, period: str,
               target: float | None) -> GapResponse:  # fmt: skip
    from salespilot.targets.gap import gap_attribution
    from salespilot.targets.periods import parse_period
    from salespilot.targets.service import configs_from_settings

    try:
        p = parse_period(period)
    except ValueError as exc:
        raise ApiError(422, str(exc), code="bad_period") from None
    key = ("gap", by, scope, team, p.label, target)
    fc, _, _ = configs_from_settings(holder.settings)

    def run() -> dict:
        return gap_attribution(state.history, scope, p, by=by, team=team, as_of=state.as_of,
                               target=target, forecast_config=fc).to_dict()  # fmt: skip

    out = await memo_limited(state.cache, key, holder.settings.serving_request_timeout_s, run)
    return GapResponse(**out)
