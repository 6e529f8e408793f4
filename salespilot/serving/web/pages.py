"""The /app pages: each route authorises like /v1 and calls the same plain modules."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated
from urllib.parse import quote

import pandas as pd
from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from salespilot.models.win_probability import SCORE_LABEL as WIN_LABEL
from salespilot.models.win_probability import SPEC as WIN_SPEC
from salespilot.models.win_probability import score_label
from salespilot.serving.auth import Principal
from salespilot.serving.best_times import contact_best_times
from salespilot.serving.deps import Holder, State, check_rep
from salespilot.serving.errors import ApiError
from salespilot.serving.explanations import explain_entity
from salespilot.serving.web import charts, views
from salespilot.serving.web.session import CSRF_FIELD, WebSessions

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")
templates.env.globals["win_label"] = WIN_LABEL
router = APIRouter(prefix="/app", include_in_schema=False)


class SignInRequired(Exception):
    """No valid page session: the browser goes to the sign-in form."""

    def __init__(self, next_url: str) -> None:
        self.next_url = next_url


def sessions(request: Request) -> WebSessions:
    return request.app.state.web_sessions


def page_user(request: Request) -> Principal:
    user = sessions(request).principal(request)
    if user is None:
        raise SignInRequired(request.url.path)
    return user


PageUser = Annotated[Principal, Depends(page_user)]


def render(request: Request, template: str, status: int = 200, **context) -> HTMLResponse:
    """A page with the CSRF value its forms post back (kept in a signed cookie)."""
    web = sessions(request)
    csrf = web.csrf_value(request)
    response = templates.TemplateResponse(
        request, template, {"csrf": csrf, "csrf_field": CSRF_FIELD, **context}, status_code=status
    )
    web.keep_csrf(response, csrf)
    return response


def require_csrf(request: Request, submitted: str | None) -> None:
    if not sessions(request).csrf_ok(request, submitted):
        raise ApiError(
            403,
            "This form has expired or did not come from this site: reload the page and try again.",
            code="csrf_failed",
        )


def home_for(user: Principal) -> str:
    if user.role == "rep":
        return f"/app/reps/{quote(user.rep_id or '')}"
    if user.role == "manager":
        return f"/app/teams/{quote(user.team or '')}"
    return "/app/models"


def _safe_next(value: str | None) -> str | None:
    # only our own pages: never an absolute or scheme-relative address (open redirect)
    if value and value.startswith("/app/") and not value.startswith("//"):
        return value
    return None


# -- sign in / out ------------------------------------------------------------------------------


@router.get("/login", response_class=HTMLResponse)
async def login_form(request: Request, next: str | None = None) -> HTMLResponse:
    return render(request, "login.html", next=_safe_next(next), error=None, user=None)


@router.post("/login", response_class=HTMLResponse)
async def login(
    request: Request,
    token: Annotated[str, Form(max_length=200)] = "",
    csrf: Annotated[str, Form(max_length=200)] = "",
    next: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    require_csrf(request, csrf)
    redirect = RedirectResponse("/app/", status_code=303)
    user = sessions(request).sign_in(redirect, token)
    if user is None:
        return render(
            request,
            "login.html",
            status=401,
            next=_safe_next(next),
            error="Unknown or revoked token. Ask your admin for one (salespilot tokens create).",
            user=None,
        )
    redirect.headers["location"] = _safe_next(next) or home_for(user)
    return redirect


@router.post("/logout")
async def logout(request: Request, csrf: Annotated[str, Form(max_length=200)] = "") -> Response:
    require_csrf(request, csrf)
    response = RedirectResponse("/app/login", status_code=303)
    sessions(request).sign_out(response)
    return response


@router.get("/logout", response_class=HTMLResponse)
async def logout_form(request: Request, user: PageUser) -> HTMLResponse:
    return render(request, "logout.html", user=user)


@router.get("/")
async def start(user: PageUser) -> RedirectResponse:
    return RedirectResponse(home_for(user), status_code=303)


# -- rep: the morning list and one item ----------------------------------------------------------


@router.get("/reps/{rep_id}", response_class=HTMLResponse)
async def morning(
    request: Request,
    rep_id: str,
    user: PageUser,
    state: State,
    show: Annotated[int, Query(ge=1, le=500)] = 20,
) -> HTMLResponse:
    from salespilot.serving.routes import calendar_url

    check_rep(user, state, rep_id)
    rep = state.reps.loc[rep_id]
    items = state.rep_items.get(rep_id, ())
    feed = calendar_url(request, request.app.state.calendar_keys.key(user, rep_id), rep_id)
    return render(
        request,
        "rep.html",
        user=user,
        rep_id=rep_id,
        rep_name=rep.get("name"),
        team=state.rep_team(rep_id),
        rep_zone=state.rep_timezones.get(rep_id, "UTC"),
        as_of=state.as_of,
        win_label=_win_label(state),
        items=items[:show],
        total=len(items),
        calendar_feed=feed,
    )


def _win_label(state) -> str:
    """ "won within N days", N the served win model's own horizon."""
    return score_label(WIN_SPEC.horizon_of(state.model("win_probability")))


def _item_or_404(state, rep_id: str, entity_id: str):
    item = views.find_item(state, rep_id, entity_id)
    if item is None:
        raise ApiError(404, f"{entity_id!r} is not on {rep_id}'s list.", code="item_not_found")
    return item


@router.get("/reps/{rep_id}/items/{entity_id}", response_class=HTMLResponse)
async def item_page(
    request: Request, rep_id: str, entity_id: str, user: PageUser, state: State, holder: Holder
) -> HTMLResponse:
    check_rep(user, state, rep_id)
    item = _item_or_404(state, rep_id, entity_id)
    found = await run_in_threadpool(explain_entity, state, item.model, entity_id)
    chart = None if found is None else charts.to_div(charts.shap_waterfall(found[0]), "shap")
    slots = None
    if item.best_time is not None and state.model("contact_time") is not None:
        slots = await run_in_threadpool(
            contact_best_times,
            state,
            item.best_time.contact_id,
            top=5,
            working_hours=tuple(holder.settings.serving_working_hours),
        )
    return render(
        request,
        "item.html",
        user=user,
        rep_id=rep_id,
        item=item,
        chart=chart,
        slots=slots,
        stages=views.stage_path(state.history, entity_id) if item.kind == "deal" else [],
        timeline=views.timeline(state.history, item),
        as_of=state.as_of,
        win_label=_win_label(state),
    )


@router.get("/reps/{rep_id}/items/{entity_id}/calendar.ics")
async def item_calendar(
    rep_id: str,
    entity_id: str,
    user: PageUser,
    state: State,
    holder: Holder,
    slot: Annotated[int, Query(ge=0, le=5)] = 0,
) -> Response:
    """Slot 0 is the list's best time; 1-5 the item page's suggested slots."""
    from salespilot.serving.calendar import calendar_ics, call_event

    check_rep(user, state, rep_id)
    item = _item_or_404(state, rep_id, entity_id)
    if item.best_time is None:
        raise ApiError(404, "This item has no contact to call.", code="no_slot")
    start = item.best_time.contact_local_time
    if slot > 0:
        slots = contact_best_times(
            state,
            item.best_time.contact_id,
            top=5,
            working_hours=tuple(holder.settings.serving_working_hours),
        ).top_slots
        if slot > len(slots):
            raise ApiError(404, f"No suggested slot {slot}.", code="no_slot")
        start = slots[slot - 1].contact_local_time
    body = calendar_ics(
        [call_event(item, rep_id=rep_id, start=start, stamp=state.loaded_at, slot=slot)],
        name=f"SalesPilot: {item.title}",
    )
    return Response(
        body,
        media_type="text/calendar; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="call-{entity_id}.ics"'},
    )


# -- manager: the target dashboard -------------------------------------------------------------

UNITS = ("rep", "team", "region", "product_line")


@router.get("/teams/{team}", response_class=HTMLResponse)
async def dashboard(
    request: Request,
    team: str,
    user: PageUser,
    state: State,
    holder: Holder,
    unit: Annotated[str, Query(pattern="^(rep|team|region|product_line)$")] = "rep",
    period: Annotated[str | None, Query(max_length=16)] = None,
    top_down: Annotated[str | None, Query(max_length=32)] = None,
) -> HTMLResponse:
    from salespilot.serving.at_risk import at_risk_accounts
    from salespilot.serving.routes_targets import TargetsRequest, recommendations, team_health
    from salespilot.targets.backtest import booked
    from salespilot.targets.periods import next_period, parse_period, period_containing

    if user.role == "rep":
        raise ApiError(403, "The target dashboard is for managers and admins.")
    holder.limiter.check(user.token_id)
    if not period:
        # the quarter under way, unless under two weeks of it are left: then the next one
        current = period_containing(state.as_of)
        soon = current.end - state.as_of < pd.Timedelta(days=14)
        period = str(next_period(state.as_of) if soon else current)
    top = None
    if top_down not in (None, ""):
        try:
            top = float(str(top_down).replace(",", ""))
        except ValueError:
            raise ApiError(422, f"Top-down number {top_down!r} is not a number.") from None
    body = TargetsRequest(period=period, unit=unit, team=team, top_down=top)
    targets = (await recommendations(body, user, state, holder)).model_dump()
    health = (await team_health(team, user, state, holder)).model_dump()
    booked_by = None
    if parse_period(period).start <= state.as_of:
        mates = state.reps.index[state.reps["team"].astype(str) == team]
        got = booked(state.history, parse_period(period), by=unit, rep_ids=mates)
        booked_by = {str(k): float(v) for k, v in got.items()}
    fan = charts.to_div(charts.forecast_fan(targets["units"], booked=booked_by), "fan")
    accounts = (
        at_risk_accounts(state, team=team, owner_rep_id=None, limit=10)
        if state.model("churn_risk") is not None
        else None
    )
    return render(
        request,
        "team.html",
        user=user,
        team=team,
        unit=unit,
        units=UNITS,
        period=period,
        top_down=top_down or "",
        targets=targets,
        booked=booked_by,
        fan=fan,
        health=health,
        deals=views.team_deals_at_risk(state, team),
        accounts=accounts,
        as_of=state.as_of,
    )


# -- data scientist / admin: models ------------------------------------------------------------


def _admin(user: Principal) -> None:
    if not user.is_admin:
        raise ApiError(403, "The models page is for admins.", code="admin_only")


@router.get("/models", response_class=HTMLResponse)
async def models_page(
    request: Request, user: PageUser, state: State, holder: Holder, done: str | None = None
) -> HTMLResponse:
    _admin(user)
    overview = await run_in_threadpool(views.models_overview, holder.settings, state.cache)
    for m in overview:
        curves = {
            f"v{v['version']}": v["calibration_curve"]
            for v in m["versions"]
            if v.get("calibration_curve")
        }
        m["chart"] = (
            charts.to_div(charts.calibration_chart(curves), f"cal-{m['name']}") if curves else None
        )
    return render(
        request,
        "models.html",
        user=user,
        models=overview,
        serving=state.versions,
        mlflow=views.mlflow_ui(holder.settings),
        done=done,
    )


@router.get("/models/{name}/{action}", response_class=HTMLResponse)
async def confirm_action(
    request: Request, name: str, action: str, user: PageUser, version: str | None = None
) -> HTMLResponse:
    _admin(user)
    if action not in ("promote", "rollback"):
        raise ApiError(404, f"No model action {action!r}.")
    return render(request, "confirm.html", user=user, name=name, action=action, version=version)


@router.post("/models/{name}/{action}")
async def model_action(
    request: Request,
    name: str,
    action: str,
    user: PageUser,
    holder: Holder,
    csrf: Annotated[str, Form(max_length=200)] = "",
    version: Annotated[str, Form(max_length=20)] = "",
    confirm: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    from salespilot.models import SPECS
    from salespilot.training.promotion import promote, rollback
    from salespilot.training.tracking import RegistryError

    _admin(user)
    require_csrf(request, csrf)
    if name not in SPECS:
        raise ApiError(404, f"No model named {name!r}.", code="model_not_found")
    if confirm != "yes":
        raise ApiError(422, "Tick the confirmation box to go on.", code="not_confirmed")
    try:
        if action == "promote":
            done = await run_in_threadpool(
                promote,
                name,
                version,
                settings=holder.settings,
                reason=f"promoted from the models page ({user.token_id})",
            )
            what = f"{name} v{done} is the champion"
        elif action == "rollback":
            done = await run_in_threadpool(rollback, name, settings=holder.settings)
            what = f"{name} rolled back to v{done}"
        else:
            raise ApiError(404, f"No model action {action!r}.")
    except RegistryError as exc:
        raise ApiError(409, str(exc), code="registry_refused") from None
    await run_in_threadpool(holder.reload)  # serve the new champion now
    return RedirectResponse(f"/app/models?done={quote(what)}", status_code=303)
