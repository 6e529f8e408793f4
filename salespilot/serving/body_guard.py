"""Request bodies: the caller is authenticated before a byte of the body is read, and a body
above ``serving_max_body_bytes`` is refused with 413 (FastAPI itself reads the whole body
before any dependency runs, so an anonymous 200 MB POST used to be read, then refused).

No request may carry a NUL character (U+0000), in its path, its query or its body (raw or as
the JSON escape ``\\u0000``): it is refused with 422 ``nul_byte`` before any route sees it, as
the history loader refuses a NUL byte in a cell (rule ``nul_byte``)."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from starlette.responses import JSONResponse

from salespilot.serving.auth import TokenStore
from salespilot.serving.deps import authenticate
from salespilot.serving.errors import ApiError, error_body

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_BODY_METHODS = {"POST", "PUT", "PATCH"}
_NUL_IN_URL = re.compile(rb"\x00|%00")
_NUL_IN_BODY = re.compile(rb"\x00|(?<!\\)(?:\\\\)*\\u0000", re.IGNORECASE)
"""A NUL byte, or a JSON ``\\u0000`` escape (an odd run of backslashes before ``u0000``)."""


def _nul_refused(where: str) -> JSONResponse:
    message = f"The request's {where} holds a NUL character (\\x00, %00 or \\u0000): none may."
    return JSONResponse(status_code=422, content=error_body("nul_byte", message, location=where))


def _too_large(limit: int) -> JSONResponse:
    message = f"The request body is larger than the {limit:,} bytes this service accepts."
    return JSONResponse(
        status_code=413, content=error_body("body_too_large", message, max_bytes=limit)
    )


class BodyGuard:
    """ASGI middleware: 401 before the body for ``/v1/`` routes, 413 above ``max_bytes``."""

    def __init__(self, app: ASGIApp, *, tokens: TokenStore, max_bytes: int) -> None:
        self.app = app
        self.tokens = tokens
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            raw_path = scope.get("raw_path") or scope["path"].encode("utf-8", "surrogateescape")
            for where, part in (("path", raw_path), ("query", scope.get("query_string", b""))):
                if _NUL_IN_URL.search(part) or (where == "path" and "\x00" in scope["path"]):
                    await _nul_refused(where)(scope, receive, send)
                    return
        if scope["type"] != "http" or scope["method"] not in _BODY_METHODS:
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        if scope["path"].startswith("/v1/"):
            try:
                authenticate(self.tokens, headers.get("authorization"))
            except ApiError as exc:
                body = error_body(exc.code, exc.message)
                await JSONResponse(body, exc.status_code, headers=exc.headers)(scope, receive, send)
                return
        length = headers.get("content-length", "")
        if length.isdigit() and int(length) > self.max_bytes:
            await _too_large(self.max_bytes)(scope, receive, send)
            return
        # no (or a lying) Content-Length: read at most the limit, then replay what was read
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                chunks = []
                break
            size += len(message.get("body", b""))
            if size > self.max_bytes:
                await _too_large(self.max_bytes)(scope, receive, send)
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        form = headers.get("content-type", "").startswith("application/x-www-form-urlencoded")
        if _NUL_IN_BODY.search(body) or (form and _NUL_IN_URL.search(body)):
            await _nul_refused("body")(scope, receive, send)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)
