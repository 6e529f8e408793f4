"""The HTTP/1.1 protocol the service runs on: uvicorn's h11 one, with a bound on the request
head (request line and headers) that answers 431 instead of dropping the connection.

uvicorn reads a request head until ``h11_max_incomplete_event_size`` bytes and then answers a
plain-text 400, closing the socket while the client is still sending: the client saw a
connection reset. Here a head above ``SALESPILOT_SERVING_MAX_HEADER_BYTES`` gets the API's JSON
error with status 431, and the connection lingers briefly, discarding what the client still
sends, so the answer reaches it before the socket closes.
"""

from __future__ import annotations

import json
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from salespilot.settings import Settings

LINGER_S = 2.0


class BoundedHeadH11Protocol(H11Protocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_too_large = False
        self._refused = False
        next_event = self.conn.next_event

        def checked_next_event():  # h11 hints 431 when the head outgrew its buffer
            try:
                return next_event()
            except h11.RemoteProtocolError as exc:
                self._head_too_large = exc.error_status_hint == 431
                raise

        self.conn.next_event = checked_next_event  # type: ignore[method-assign]

    def data_received(self, data: bytes) -> None:
        if self._refused:  # lingering after the 431: drop the rest of the oversized head
            return
        super().data_received(data)

    def send_400_response(self, msg: str) -> None:
        if not self._head_too_large:
            super().send_400_response(msg)
            return
        limit = self.conn._max_incomplete_event_size
        body = json.dumps(
            {
                "error": {
                    "code": "headers_too_large",
                    "message": f"Request line and headers above {limit:,} bytes",
                    "max_bytes": limit,
                }
            }
        ).encode()
        head = (
            b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
            b"content-type: application/json\r\n"
            b"connection: close\r\n"
            b"content-length: " + str(len(body)).encode() + b"\r\n\r\n"
        )
        self.logger.warning("request head above %d bytes: 431", limit)
        self._refused = True
        self.transport.write(head + body)
        self.loop.call_later(LINGER_S, self.transport.close)


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """How ``salespilot serve`` runs uvicorn: the settings' interface, this protocol, its bound."""
    return {
        "host": settings.host,
        "port": settings.port,
        "http": BoundedHeadH11Protocol,
        "h11_max_incomplete_event_size": settings.serving_max_header_bytes,
    }
