"""What an attack run on a served demo found: no secret or server path to anonymous callers."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from salespilot.serving import models_info as mi
from salespilot.serving.app import create_app
from salespilot.serving.errors import redact


def test_redact_drops_credentials_uris_and_paths():
    text = (
        "API request to http://svc:s3cret@mlflow.internal:5000/api/2.0/mlflow failed; "
        "(psycopg.OperationalError) postgresql://svc:s3cret@db:5432/mlflow; "
        "unable to open database file /srv/salespilot/mlflow.db: no alias 'champion'"
    )
    out = redact(text)
    for leak in ("s3cret", "svc", "mlflow.internal", "/srv/salespilot", "postgresql://svc"):
        assert leak not in out, (leak, out)
    assert "no alias 'champion'" in out and "unable to open database file" in out


@pytest.fixture(scope="module")
def cold_start(serving_settings, tmp_path_factory):
    """The served data over a registry store that is no SQLite database (a cold start: a
    state folder with no serving export either, so the registry is the only way in)."""
    layout = tmp_path_factory.mktemp("secret-layout")
    broken = layout / "broken.db"
    broken.write_bytes(b"garbage" * 100)
    app = create_app(
        serving_settings.model_copy(
            update={"mlflow_tracking_uri": f"sqlite:///{broken}", "state_dir": layout / "state"}
        )
    )
    with TestClient(app) as c:
        yield c, broken


def test_cold_start_ready_is_redacted_for_all_but_admins(cold_start, people):
    c, broken = cold_start
    raw = mi.readiness(c.app.state.holder).problems
    assert raw and any("://" in p for p in raw), raw  # the store's error quotes a URI
    store = c.app.state.tokens
    admin, _ = store.create(role="admin")
    rep, _ = store.create(role="rep", rep_id=people.rep)
    for headers in ({}, {"Authorization": f"Bearer {rep}"}):
        r = c.get("/ready", headers=headers)
        assert r.status_code == 503
        shown = r.json()["error"]["readiness"]["problems"]
        assert shown == [redact(p) for p in raw] != raw
        assert "://" not in r.text and str(broken.parent) not in r.text
    as_admin = c.get("/ready", headers={"Authorization": f"Bearer {admin}"})
    assert as_admin.status_code == 503
    assert as_admin.json()["error"]["readiness"]["problems"] == raw


@pytest.fixture(scope="module")
def small_body_app(tmp_path_factory):
    from salespilot.settings import Settings

    settings = Settings(state_dir=tmp_path_factory.mktemp("limits"), serving_max_body_bytes=1000)
    app = create_app(settings, load=False)
    admin, _ = app.state.tokens.create(role="admin")
    return app, {"Authorization": f"Bearer {admin}"}


def _asgi_post(app, path: str, headers: dict[str, str], body: bytes) -> tuple[int, int, dict]:
    """POST through the ASGI app; returns (status, receive() calls, JSON body)."""
    import asyncio
    import json

    calls = 0
    sent: list[dict] = []

    async def receive():
        nonlocal calls
        calls += 1
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message):
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "server": ("testserver", 80),
        "client": ("127.0.0.1", 1),
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
    }
    asyncio.run(app(scope, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    payload = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], calls, json.loads(payload)


def test_anonymous_post_is_refused_before_its_body_is_read(small_body_app):
    app, _ = small_body_app
    headers = {"content-type": "application/json", "content-length": str(200_000_000)}
    status, reads, body = _asgi_post(app, "/v1/targets/recommendations", headers, b"{")
    assert (status, reads, body["error"]["code"]) == (401, 0, "missing_token")
    headers["authorization"] = "Bearer sp_wrong"
    status, reads, body = _asgi_post(app, "/v1/models/reload", headers, b"{")
    assert (status, reads, body["error"]["code"]) == (401, 0, "invalid_token")


def test_a_body_above_the_limit_is_413(small_body_app):
    app, admin = small_body_app
    url = "/v1/targets/recommendations"
    big = b'{"period": "2026-Q3", "team": "' + b"x" * 2000 + b'"}'
    with TestClient(app) as c:
        r = c.post(url, content=big, headers={**admin, "Content-Type": "application/json"})
        assert r.status_code == 413 and r.json()["error"]["code"] == "body_too_large"
        # no Content-Length (chunked): counted while read
        r = c.post(url, content=iter([big[:600], big[600:]]), headers=admin)
        assert r.status_code == 413 and r.json()["error"]["max_bytes"] == 1000
        r = c.post(url, json={"period": "2026-Q3"}, headers=admin)  # small: served (no data yet)
        assert r.status_code == 503 and r.json()["error"]["code"] == "not_ready"


def test_an_unknown_id_and_another_reps_id_get_the_same_403(client, state, people):
    """Outside a token's scope, "does not exist" and "not yours" are one answer: a rep or a
    manager cannot probe which contact, deal or rep ids exist. Only an admin sees the 404."""
    foreign_contact = next(
        c for c, a in state.contact_account.items() if state.account_owner.get(a) == people.outsider
    )
    foreign_deal = next(i.entity_id for i in state.rep_items[people.outsider] if i.kind == "deal")
    probes = {
        "rep": [
            ("/v1/contacts/{}/best-times", foreign_contact, "C_NOBODY"),
            ("/v1/explanations/win_probability/{}", foreign_deal, "D_NOBODY"),
            ("/v1/reps/{}/priorities", people.outsider, "R_NOBODY"),
        ],
        "manager": [
            ("/v1/contacts/{}/best-times", foreign_contact, "C_NOBODY"),
            ("/v1/explanations/win_probability/{}", foreign_deal, "D_NOBODY"),
            ("/v1/reps/{}/priorities", people.outsider, "R_NOBODY"),
        ],
    }
    for who, routes in probes.items():
        for route, foreign, unknown in routes:
            a = client.get(route.format(foreign), headers=people.h(who))
            b = client.get(route.format(unknown), headers=people.h(who))
            assert a.status_code == b.status_code == 403, (who, route, a.text, b.text)
            assert a.json()["error"]["code"] == b.json()["error"]["code"] == "forbidden"
            assert a.json()["error"]["message"].replace(foreign, "X") == b.json()["error"][
                "message"
            ].replace(unknown, "X"), (who, route)
    for route, code in (
        ("/v1/contacts/C_NOBODY/best-times", "contact_not_found"),
        ("/v1/explanations/win_probability/D_NOBODY", "entity_not_found"),
        ("/v1/reps/R_NOBODY/priorities", "rep_not_found"),
    ):
        r = client.get(route, headers=people.h("admin"))
        assert (r.status_code, r.json()["error"]["code"]) == (404, code)


_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(?P<offset>Z|[+-]\d{2}:\d{2})?$")


def _instants(value, path="$"):
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _instants(v, f"{path}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _instants(v, f"{path}[{i}]")
    elif isinstance(value, str) and _ISO.match(value):
        yield path, value


def test_every_served_instant_carries_its_utc_offset(client, state, people):
    """The schema says ``date-time`` (RFC 3339): an instant without an offset is not one."""
    contact = next(
        c for c, a in state.contact_account.items() if state.account_owner.get(a) == people.rep
    )
    deal = next(i.entity_id for i in state.rep_items[people.rep] if i.kind == "deal")
    admin = people.h("admin")
    answers = {
        "/ready": client.get("/ready"),
        "/v1/models": client.get("/v1/models", headers=admin),
        "priorities": client.get(f"/v1/reps/{people.rep}/priorities?limit=50", headers=admin),
        "as_of": client.get(
            f"/v1/reps/{people.rep}/priorities",
            params={"as_of": (state.as_of - pd.Timedelta(days=7)).isoformat()},
            headers=admin,
        ),
        "best-times": client.get(f"/v1/contacts/{contact}/best-times", headers=admin),
        "at-risk": client.get("/v1/accounts/at-risk?limit=50", headers=admin),
        "explanation": client.get(f"/v1/explanations/win_probability/{deal}", headers=admin),
        "reload": client.post("/v1/models/reload", headers=admin),
    }
    seen = []
    for name, r in answers.items():
        assert r.status_code == 200, (name, r.text)
        for path, value in _instants(r.json()):
            seen.append((name, path, value))
            assert _ISO.match(value)["offset"], (name, path, value)
    assert {n for n, _, _ in seen} >= {"/ready", "/v1/models", "priorities", "as_of", "reload"}
    ready = client.get("/ready").json()
    assert ready["data_as_of"].endswith(("Z", "+00:00"))
    assert pd.Timestamp(ready["data_as_of"]) == state.as_of.tz_localize("UTC")


def test_a_nul_character_anywhere_in_a_request_is_a_422(client, people):
    """A NUL (raw, ``%00`` or the JSON escape ``\\u0000``) in a path, a query or a body is
    refused with 422 ``nul_byte`` saying where, before any route turns it into an id or a
    message; a JSON body that merely says ``\\\\u0000`` (a backslash, then text) is not."""
    admin = {**people.h("admin"), "Content-Type": "application/json"}
    url = "/v1/targets/recommendations"
    cases = {
        "path": client.get(f"/v1/reps/{people.rep}%00/priorities", headers=admin),
        "query": client.get("/v1/accounts/at-risk?team=North%00", headers=admin),
        "body": client.post(url, content=b'{"period": "2026-Q3\\u0000"}', headers=admin),
    }
    raw = client.post(url, content=b'{"period": "2026-Q3\x00"}', headers=admin)
    for where, r in [*cases.items(), ("body", raw)]:
        assert r.status_code == 422, (where, r.text)
        assert r.json()["error"]["code"] == "nul_byte" and r.json()["error"]["location"] == where
    assert "NUL" in raw.json()["error"]["message"]
    text = client.post(url, content=b'{"period": "2026-Q3\\\\u0000"}', headers=admin)
    assert text.json()["error"]["code"] == "bad_period"  # a period the route itself refuses
    anonymous = client.post(url, content=b'{"period": "2026-Q3\x00"}')
    assert anonymous.status_code == 401  # the token is checked before the body is read


def test_400_only_for_a_body_that_is_not_utf8_and_422_for_the_rest(client, people):
    """The rule docs/api.md states: bytes that are not text are a 400 ``bad_request``; text
    that is not JSON, JSON of the wrong shape and a refused value are 422s."""
    admin = {**people.h("admin"), "Content-Type": "application/json"}
    url = "/v1/targets/recommendations"
    expected = {
        b'{"period": "\xff\xfe"}': (400, "bad_request"),
        b'{"period": "2026': (422, "validation_error"),
        b"[1]": (422, "validation_error"),
        b'{"period": 5}': (422, "validation_error"),
        b'{"period": "someday"}': (422, "bad_period"),
    }
    for body, (status, code) in expected.items():
        r = client.post(url, content=body, headers=admin)
        assert (r.status_code, r.json()["error"]["code"]) == (status, code), (body, r.text)
    r = client.post(url, content=b'{"period": "\xff"}', headers=admin)
    assert "UTF-8" in r.json()["error"]["message"]
    doc = (Path(__file__).parents[2] / "docs" / "api.md").read_text(encoding="utf-8")
    assert "| 400 | `bad_request`" in doc and "400 or 422" in doc
