"""JSON errors for every failure the API can produce.

Every error body has one shape, ``{"error": {"code", "message", ...}}``, whatever raised it:
our own :class:`ApiError`, FastAPI's validation, Starlette's routing (404/405) or a bug
(500, logged with its traceback server-side and never sent to the client).
"""

from __future__ import annotations

import logging
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)

_DEFAULT_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    422: "validation_error",
    500: "internal_error",
    503: "not_ready",
}


class ApiError(Exception):
    """An error a client caused (or the service cannot answer yet), with its HTTP status."""

    def __init__(
        self,
        status_code: int,
        message: str,
        *,
        code: str | None = None,
        headers: dict[str, str] | None = None,
        **details: Any,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.code = code or _DEFAULT_CODES.get(status_code, "error")
        self.message = message
        self.headers = headers
        self.details = details


# a URI (any scheme, credentials included) or anything shaped like a file path (a token with a
# slash or backslash in it): what a failing load tends to quote
_SECRETISH = re.compile(
    r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"<>()]*"
    r"|[^\s'\"<>()=]*[/\\][^\s'\"<>(),;]*"
)


def redact(text: str) -> str:
    """``text`` without the URIs and file paths it quotes (they can hold a password, or show
    the server's layout): what callers who are not admins see of a load problem."""
    return _SECRETISH.sub("<redacted>", text)


def error_body(code: str, message: str, **details: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, **details}}


def _json(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(status_code=status, content=body, headers=headers)


async def _api_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return _json(exc.status_code, error_body(exc.code, exc.message, **exc.details), exc.headers)


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code
    code = _DEFAULT_CODES.get(status, "error")
    if status == 404:
        message = "No such endpoint. See /docs for the API."
    elif status == 400 and exc.detail == "There was an error parsing the body":
        message = "The request body cannot be read: a JSON body must be UTF-8 text."
    elif isinstance(exc.detail, str):
        message = exc.detail
    else:
        message = "Request failed."
    return _json(status, error_body(code, message), getattr(exc, "headers", None))


def _describe(err: dict[str, Any]) -> dict[str, Any]:
    loc = [str(p) for p in err.get("loc", ())]
    return {
        "location": ".".join(loc),
        "message": err.get("msg", "invalid"),
        "type": err.get("type"),
    }


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = [_describe(e) for e in exc.errors()]
    first = problems[0] if problems else {"location": "request", "message": "invalid"}
    message = f"Invalid request: {first['location']}: {first['message']}"
    return _json(422, error_body("validation_error", message, problems=problems))


async def _unhandled(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return _json(
        500,
        error_body(
            "internal_error",
            "The service failed to answer this request; the error has been logged.",
        ),
    )


def install_error_handlers(app: FastAPI) -> None:
    """Route every exception type the stack can raise to a JSON error body."""
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _unhandled)
