"""The /v1 routes: each parses, authorises, and calls one service function."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import pandas as pd
from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.security import APIKeyQuery, HTTPAuthorizationCredentials

from salespilot.serving import models_info as mi
from salespilot.serving.at_risk import at_risk_accounts
from salespilot.serving.best_times import contact_best_times
from salespilot.serving.deps import (
    AdminUser,
    CurrentUser,
    Holder,
    LimitedUser,
    State,
    authenticate,
    bearer,
    check_known,
    check_rep,
    check_team_exists,
)
from salespilot.serving.errors import ApiError
from salespilot.serving.explanations import explain_entity
from salespilot.serving.limits import run_limited
from salespilot.serving.priorities import rep_priorities_json
from salespilot.serving.schemas import (
    BODY_ERRORS,
    AtRiskResponse,
    BestTimesResponse,
    CalendarLink,
    ExplanationResponse,
    ModelName,
    ModelsResponse,
    PrioritiesResponse,
    ReloadResponse,
    error_responses,
)

router = APIRouter(prefix="/v1", responses=error_responses(401, 403, 404, 422, 429, 503))

Id = Annotated[str, Path(min_length=1, max_length=128)]


def _as_of(value: datetime | None, state) -> pd.Timestamp | None:
    """The requested instant, floored to the hour (so nearby requests share one rebuild)."""
    if value is None:
        return None
    ts = pd.Timestamp(value)
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    ts = ts.floor("us")
    start = state.history.opportunities["created_at"].min()
    if ts <= start:
        raise ApiError(
            422,
            f"as_of {ts.isoformat()} is before the data's first deal ({start.isoformat()}).",
            code="as_of_out_of_range",
        )
    if ts > state.as_of:
        raise ApiError(
            422,
            f"as_of {ts.isoformat()} is after the data's latest event ({state.as_of.isoformat()}).",
            code="as_of_out_of_range",
        )
    # any other instant is floored to the hour: nearby requests share one rebuild
    return ts if ts == state.as_of else ts.floor("h")


@router.get(
    "/reps/{rep_id}/priorities",
    response_model=PrioritiesResponse,
    summary="A rep's ranked follow-up list",
)
async def priorities(
    rep_id: Id,
    user: CurrentUser,
    state: State,
    holder: Holder,
    limit: Annotated[int, Query(ge=1, le=500)] = 20,
    as_of: Annotated[
        datetime | None, Query(description="Score as of this instant instead of the data's now.")
    ] = None,
) -> Response:
    check_rep(user, state, rep_id)
    if state.model("win_probability") is None:
        raise ApiError(503, "The win_probability model is not loaded.", code="model_unavailable")
    ts = _as_of(as_of, state)
    if ts is not None and ts != state.as_of:
        from salespilot.serving.priorities import as_of_memo, state_as_of

        holder.limiter.check(user.token_id)
        settings = holder.settings
        past = as_of_memo(state, settings).get((ts.isoformat(), rep_id))
        if past is None:  # a rebuild: at most serving_max_rebuilds at once
            work = holder.rebuilds.run(state_as_of, state, settings, ts, rep_id)
            past = await run_limited(settings.serving_request_timeout_s, work)
        body = rep_priorities_json(past, rep_id, limit)
    else:
        body = rep_priorities_json(state, rep_id, limit)
    return Response(content=body, media_type="application/json")


calendar_key = APIKeyQuery(
    name="key",
    auto_error=False,
    description="A calendar key from `/v1/reps/{rep_id}/calendar-link` (instead of a header).",
)


def calendar_url(request: Request, key: str, rep_id: str) -> str:
    """The absolute address of ``rep_id``'s calendar feed opened by ``key``."""
    url = request.url_for("rep_calendar_ics", rep_id=rep_id)
    return str(url.include_query_params(key=key))


@router.get(
    "/reps/{rep_id}/calendar.ics",
    summary="A rep's list as calendar events (one call per item at its best time)",
    description="Authenticate with the bearer header, or with `?key=` from "
    "`/v1/reps/{rep_id}/calendar-link` so that a calendar app can subscribe.",
    response_class=Response,
    responses={200: {"content": {"text/calendar": {}}}},
)
async def rep_calendar_ics(
    request: Request,
    rep_id: Id,
    state: State,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    key: Annotated[str | None, Depends(calendar_key)],
    limit: Annotated[int, Query(ge=1, le=500)] = 20,
) -> Response:
    from salespilot.serving.calendar import rep_calendar

    if key:
        user = request.app.state.calendar_keys.principal(key, rep_id)
        if user is None:
            raise ApiError(
                401,
                f"Unknown or revoked calendar key: get a new link from /v1/reps/{rep_id}/"
                "calendar-link or the morning page.",
                code="invalid_calendar_key",
            )
    else:
        header = None if credentials is None else f"{credentials.scheme} {credentials.credentials}"
        user = authenticate(request.app.state.tokens, header)
    check_rep(user, state, rep_id)
    body = rep_calendar(
        state.rep_items.get(rep_id, ()), rep_id=rep_id, stamp=state.loaded_at, limit=limit
    )
    return Response(
        content=body,
        media_type="text/calendar; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="salespilot-{rep_id}.ics"'},
    )


@router.get(
    "/reps/{rep_id}/calendar-link",
    response_model=CalendarLink,
    summary="A subscription address for the rep's calendar feed (no header needed)",
)
async def rep_calendar_link(
    request: Request, rep_id: Id, user: CurrentUser, state: State
) -> CalendarLink:
    check_rep(user, state, rep_id)
    url = calendar_url(request, request.app.state.calendar_keys.key(user, rep_id), rep_id)
    return CalendarLink(
        rep_id=rep_id,
        url=url,
        webcal_url="webcal://" + url.split("://", 1)[1],
        token_id=user.token_id,
        revoke=f"salespilot tokens revoke {user.token_id}",
    )


@router.get(
    "/contacts/{contact_id}/best-times",
    response_model=BestTimesResponse,
    summary="Best slots to reach a contact, and the week as a 7x24 grid",
)
async def best_times(
    contact_id: Id,
    user: LimitedUser,
    state: State,
    holder: Holder,
    top: Annotated[int, Query(ge=1, le=50)] = 5,
) -> BestTimesResponse:
    check_known(
        user,
        state,
        state.contact_reps(contact_id) if contact_id in state.contact_account else None,
        "contact",
        ApiError(404, f"No contact with id {contact_id!r}.", code="contact_not_found"),
    )
    if state.model("contact_time") is None:
        raise ApiError(503, "The contact_time model is not loaded.", code="model_unavailable")
    hours = tuple(holder.settings.serving_working_hours)
    return await run_limited(
        holder.settings.serving_request_timeout_s,
        contact_best_times,
        state,
        contact_id,
        top=top,
        working_hours=hours,
    )


@router.get(
    "/accounts/at-risk",
    response_model=AtRiskResponse,
    summary="Customer accounts ranked by churn risk x annual value",
)
async def at_risk(
    user: CurrentUser,
    state: State,
    team: Annotated[str | None, Query(max_length=128)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 20,
) -> AtRiskResponse:
    if state.model("churn_risk") is None:
        raise ApiError(503, "The churn_risk model is not loaded.", code="model_unavailable")
    owner = None
    if user.role == "manager":
        if team is not None and team != user.team:
            raise ApiError(403, f"A manager token reads its own team only ({user.team}).")
        team = user.team
    elif user.role == "rep":
        if team is not None and team != state.rep_team(user.rep_id or ""):
            raise ApiError(403, "A rep token reads its own accounts only.")
        owner = user.rep_id
    else:
        check_team_exists(state, team)
    return at_risk_accounts(state, team=team, owner_rep_id=owner, limit=limit)


@router.get(
    "/explanations/{model}/{entity_id}",
    response_model=ExplanationResponse,
    summary="SHAP values of an entity's current score",
)
async def explanation(
    model: ModelName, entity_id: Id, user: LimitedUser, state: State, holder: Holder
) -> ExplanationResponse:
    if state.model(model) is None:
        raise ApiError(503, f"The {model} model is not loaded.", code="model_unavailable")
    found = await run_limited(
        holder.settings.serving_request_timeout_s, explain_entity, state, model, entity_id
    )
    what = {"win_probability": "open deal", "churn_risk": "customer account"}.get(model, "contact")
    check_known(
        user,
        state,
        None if found is None else found[1],
        "entity",
        ApiError(
            404, f"No scored {what} with id {entity_id!r} for {model}.", code="entity_not_found"
        ),
    )
    return found[0]


@router.get("/models", response_model=ModelsResponse, summary="Models serving, versions, metrics")
async def models(_: AdminUser, state: State, holder: Holder) -> ModelsResponse:
    return mi.models_info(state, alias=holder.settings.serving_model_alias)


@router.post(
    "/models/reload",
    response_model=ReloadResponse,
    summary="Reload data and models",
    responses=error_responses(*BODY_ERRORS),
)
async def reload(admin: AdminUser, holder: Holder) -> ReloadResponse:
    holder.limiter.check(admin.token_id)
    before = holder.state
    state = await run_in_threadpool(holder.reload)  # no time limit: a reload builds aside
    if state is None:
        raise ApiError(503, f"Reload failed: {holder.last_error}", code="reload_failed")
    problems = list(state.problems) + ([holder.last_error] if holder.last_error else [])
    return ReloadResponse(
        reloaded=state is not before,
        degraded=bool(problems),
        loaded_at=state.loaded_at,
        models=state.versions,
        problems=problems,
    )
