"""The served protocol over a real socket: an oversized request head gets a JSON 431."""

from __future__ import annotations

import contextlib
import json
import re
import socket
import threading
import time

import pytest

from salespilot.serving.app import create_app
from salespilot.serving.http_protocol import uvicorn_options


@pytest.fixture(scope="module")
def port(tmp_path_factory):
    import uvicorn

    from salespilot.settings import Settings

    settings = Settings(
        state_dir=tmp_path_factory.mktemp("http-state"), port=0, serving_max_header_bytes=8192
    )
    app = create_app(settings, load=False)  # no state needed: /health and the protocol
    server = uvicorn.Server(uvicorn.Config(app, **uvicorn_options(settings), log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "server did not start"
        time.sleep(0.02)
    yield server.servers[0].sockets[0].getsockname()[1]
    server.should_exit = True
    thread.join(10)


def _exchange(port: int, head: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            s.sendall(head)  # refused early: the answer is already on its way, read it
        answer = b""
        while chunk := s.recv(65536):
            answer += chunk
            head_part, sep, body = answer.partition(b"\r\n\r\n")
            length = re.search(rb"content-length: (\d+)", head_part, re.IGNORECASE)
            if sep and length and len(body) >= int(length.group(1)):
                break  # the whole answer: no need to wait for the close
    return answer


def test_a_one_megabyte_header_is_a_json_431_not_a_reset(port):
    big = b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 1_000_000 + b"\r\n\r\n"
    answer = _exchange(port, big)
    status, _, rest = answer.partition(b"\r\n")
    assert status == b"HTTP/1.1 431 Request Header Fields Too Large"
    body = json.loads(rest.split(b"\r\n\r\n", 1)[1])
    assert body["error"]["code"] == "headers_too_large" and body["error"]["max_bytes"] == 8192


def test_headers_within_the_bound_are_served(port):
    ok = (
        b"GET /health HTTP/1.1\r\nHost: x\r\nX-Fine: "
        + b"a" * 4000
        + b"\r\nConnection: close\r\n\r\n"
    )
    answer = _exchange(port, ok)
    assert answer.startswith(b"HTTP/1.1 200 OK")
    assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["status"] == "ok"


def test_a_malformed_request_is_still_a_400(port):
    assert _exchange(port, b"NOT HTTP\r\n\r\n").startswith(b"HTTP/1.1 400")
