"""Server-rendered pages for reps, managers and admins, served by the API's app under /app.

``install_web(app)`` adds the routes, the assets shipped with the package (Plotly's
JavaScript comes from the ``plotly`` package itself, never a CDN) and error pages: under
/app an error is a readable HTML page with the right status, elsewhere the API's JSON.
Pages go out gzip-compressed (Starlette's ``GZipMiddleware``) to browsers that accept it.
"""

from __future__ import annotations

import gzip
from functools import lru_cache
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.gzip import GZipMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from salespilot.serving.errors import ApiError

STATIC = Path(__file__).parent / "static"
_ASSETS = {"app.css": "text/css; charset=utf-8", "plotly.min.js": "text/javascript; charset=utf-8"}


@lru_cache(maxsize=4)
def _asset(name: str) -> tuple[bytes, bytes]:
    """An asset's bytes and their gzip (compressed once per process)."""
    if name == "plotly.min.js":
        from plotly.offline import get_plotlyjs

        raw = get_plotlyjs().encode("utf-8")
    else:
        raw = (STATIC / name).read_bytes()
    return raw, gzip.compress(raw, 6)


class PagesGZip:
    """Starlette's ``GZipMiddleware`` for the pages only: the /v1 JSON hot path stays as it is.
    An asset already compressed (``Content-Encoding`` set) passes through untouched."""

    def __init__(self, app: ASGIApp, minimum_size: int = 500, compresslevel: int = 6) -> None:
        self.app = app
        self.gzip = GZipMiddleware(app, minimum_size=minimum_size, compresslevel=compresslevel)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if path == "/app" or path.startswith("/app/"):
            await self.gzip(scope, receive, send)
        else:
            await self.app(scope, receive, send)


def _page_error(request: Request, status: int, message: str) -> HTMLResponse:
    from salespilot.serving.web.pages import render

    titles = {401: "Sign-in needed", 403: "Not yours to see", 404: "Not found"}
    title = titles.get(status, "Something went wrong" if status >= 500 else "Cannot do that")
    user = request.app.state.web_sessions.principal(request)
    return render(
        request, "error.html", status=status, title=title, message=message, user=user, code=status
    )


def install_web(app: FastAPI) -> None:
    """Mount the pages on ``app`` (after the API's error handlers are installed)."""
    from salespilot.serving.web.pages import SignInRequired, router
    from salespilot.serving.web.session import WebSessions

    app.state.web_sessions = WebSessions(app.state.holder.settings, app.state.tokens)
    app.include_router(router)
    app.add_middleware(PagesGZip)

    @app.get("/app/static/{name}", include_in_schema=False)
    async def asset(name: str, request: Request) -> Response:
        if name not in _ASSETS:
            raise StarletteHTTPException(404, "No such file.")
        raw, packed = _asset(name)
        headers = {"Cache-Control": "public, max-age=86400", "Vary": "Accept-Encoding"}
        if "gzip" in request.headers.get("accept-encoding", ""):
            headers["Content-Encoding"] = "gzip"
            return Response(packed, media_type=_ASSETS[name], headers=headers)
        return Response(raw, media_type=_ASSETS[name], headers=headers)

    json_handlers = dict(app.exception_handlers)

    def _pages(request: Request) -> bool:
        return request.url.path == "/app" or request.url.path.startswith("/app/")

    async def sign_in_required(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, SignInRequired)
        from urllib.parse import quote

        return RedirectResponse(f"/app/login?next={quote(exc.next_url)}", status_code=303)

    async def api_error(request: Request, exc: Exception) -> Response:
        if not _pages(request):
            return await json_handlers[ApiError](request, exc)
        assert isinstance(exc, ApiError)
        return _page_error(request, exc.status_code, exc.message)

    async def http_error(request: Request, exc: Exception) -> Response:
        if not _pages(request):
            return await json_handlers[StarletteHTTPException](request, exc)
        assert isinstance(exc, StarletteHTTPException)
        message = "There is no page at this address." if exc.status_code == 404 else str(exc.detail)
        return _page_error(request, exc.status_code, message)

    async def validation_error(request: Request, exc: Exception) -> Response:
        from fastapi.exceptions import RequestValidationError

        if not _pages(request):
            return await json_handlers[RequestValidationError](request, exc)
        assert isinstance(exc, RequestValidationError)
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ())[1:]) or "the request"
        return _page_error(request, 422, f"{where}: {first.get('msg', 'invalid')}")

    async def unhandled(request: Request, exc: Exception) -> Response:
        response = await json_handlers[Exception](request, exc)  # logs the traceback
        if not _pages(request):
            return response
        return _page_error(
            request, 500, "The page failed to load; the error has been logged. Try again later."
        )

    from fastapi.exceptions import RequestValidationError

    app.add_exception_handler(SignInRequired, sign_in_required)
    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(Exception, unhandled)
