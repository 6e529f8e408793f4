"""The FastAPI application: ``create_app(settings)`` wires state, auth, routes and errors."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, FastAPI
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials
from fastapi_offline import FastAPIOffline

from salespilot.serving import models_info as mi
from salespilot.serving.auth import CalendarKeys, TokenStore, refuse_demo_tokens, signing_key
from salespilot.serving.body_guard import BodyGuard
from salespilot.serving.deps import bearer
from salespilot.serving.errors import error_body, install_error_handlers, redact
from salespilot.serving.routes import router
from salespilot.serving.routes_insights import router as insights_router
from salespilot.serving.routes_targets import router as targets_router
from salespilot.serving.schemas import ErrorResponse, Health, Readiness, error_responses
from salespilot.serving.state import StateHolder
from salespilot.serving.web import install_web
from salespilot.settings import Settings, get_settings

log = logging.getLogger(__name__)

DOCS_ASSETS = "/docs-assets"

DESCRIPTION = """Morning priority lists, best contact times, explanations and model management.

Authenticate with `Authorization: Bearer <token>`; create tokens with
`salespilot tokens create --role rep --rep R00017` (or `--role manager --team T`, `--role admin`).
Every error is JSON: `{"error": {"code": ..., "message": ...}}`.
"""


async def _reload_every(holder: StateHolder, seconds: float) -> None:
    while True:
        await asyncio.sleep(seconds)
        await run_in_threadpool(holder.reload)


def create_app(settings: Settings | None = None, *, load: bool = True) -> FastAPI:
    """Build the app. With ``load`` the state (data + models) loads at start-up (lifespan)."""
    settings = settings or get_settings()
    holder = StateHolder(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        tasks = []
        if load and holder.state is None:
            # ready from the serving export and the stored lists, without MLflow; the
            # registry confirms the versions after (StateHolder.after_start)
            await run_in_threadpool(functools.partial(holder.reload, trust_export=True))
            tasks.append(asyncio.create_task(run_in_threadpool(holder.after_start)))
        if settings.serving_reload_interval_s > 0:
            tasks.append(
                asyncio.create_task(_reload_every(holder, settings.serving_reload_interval_s))
            )
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()

    # Swagger UI and ReDoc from files in the package, not a CDN: /docs works offline
    app = FastAPIOffline(
        title="SalesPilot API",
        version="1",
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url="/redoc",
        static_url=DOCS_ASSETS,
    )
    app.state.holder = holder
    app.state.tokens = TokenStore.for_state_dir(settings.state_dir)
    if settings.env != "dev":
        refuse_demo_tokens(app.state.tokens)
    app.state.calendar_keys = CalendarKeys(
        signing_key(settings.state_dir, settings.web_session_secret), app.state.tokens
    )
    install_error_handlers(app)
    app.add_middleware(
        BodyGuard, tokens=app.state.tokens, max_bytes=settings.serving_max_body_bytes
    )
    app.include_router(router)
    app.include_router(targets_router)
    app.include_router(insights_router)
    install_web(app)

    nul_refused = error_responses(422, e422="A NUL character in the path or query (`nul_byte`)")

    @app.get(
        "/health", response_model=Health, tags=["health"], summary="Alive", responses=nul_refused
    )
    async def health() -> Health:
        # always 200 (alive); degraded: serving, but the last good models (not "still loading")
        degraded = holder.state is not None and mi.readiness(holder).degraded
        return Health(status="degraded" if degraded else "ok", degraded=degraded)

    @app.get(
        "/ready",
        response_model=Readiness,
        tags=["health"],
        summary="Data and models loaded",
        responses={**nul_refused, 503: {"model": ErrorResponse}},
    )
    async def ready(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ):
        r = mi.readiness(holder)
        admin = credentials is not None and app.state.tokens.verify(credentials.credentials)
        if not (admin and admin.is_admin):  # anyone may ask; only an admin sees URIs and paths
            r = r.model_copy(update={"problems": [redact(p) for p in r.problems]})
        if not r.ready:
            body = error_body("not_ready", "Not ready: " + "; ".join(r.problems or ["loading"]))
            body["error"]["readiness"] = r.model_dump(mode="json")
            return JSONResponse(status_code=503, content=body)
        return r

    return app
