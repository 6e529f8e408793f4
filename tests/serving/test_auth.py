"""Tokens: stored hashed, bound to a role and scope, revocable; bad tokens get JSON 401s."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from salespilot.serving.app import create_app
from salespilot.serving.auth import TokenError, TokenStore, hash_token


def test_tokens_are_stored_hashed_and_verify(tmp_path):
    store = TokenStore(tmp_path / "tokens.json")
    secret, rec = store.create(role="rep", rep_id="R017", name="laptop")
    raw = (tmp_path / "tokens.json").read_text()
    assert secret not in raw and hash_token(secret) in raw
    p = store.verify(secret)
    assert p is not None and (p.role, p.rep_id, p.team) == ("rep", "R017", None)
    assert store.verify(secret + "x") is None
    assert [r.token_id for r in store.list()] == [rec.token_id]
    assert "token_hash" not in json.dumps(rec.public())


def test_revoked_token_is_refused_at_once(tmp_path):
    store = TokenStore(tmp_path / "tokens.json")
    secret, rec = store.create(role="admin")
    assert store.verify(secret) is not None
    # a second store (another process: the CLI) revokes; the first sees it without restart
    TokenStore(tmp_path / "tokens.json").revoke(rec.token_id)
    assert store.verify(secret) is None
    assert store.list() == [] and len(store.list(include_revoked=True)) == 1


@pytest.mark.parametrize(
    "kw",
    [dict(role="boss"), dict(role="rep"), dict(role="manager"), dict(role="manager", rep_id="R1")],
)
def test_bad_token_requests_are_refused(tmp_path, kw):
    with pytest.raises(TokenError):
        TokenStore(tmp_path / "t.json").create(**kw)


def test_revoke_unknown_id(tmp_path):
    with pytest.raises(TokenError, match="no token with id"):
        TokenStore(tmp_path / "t.json").revoke("tok_nope")


@pytest.fixture
def bare_client(settings):
    """The real app with no data loaded (auth and errors only)."""
    app = create_app(settings, load=False)
    with TestClient(app) as c:
        yield c, TokenStore.for_state_dir(settings.state_dir)


def test_missing_and_wrong_tokens_get_401_json(bare_client):
    c, _ = bare_client
    r = c.get("/v1/reps/R1/priorities")
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "missing_token"
    assert r.headers["www-authenticate"] == "Bearer"
    r = c.get("/v1/reps/R1/priorities", headers={"Authorization": "Bearer sp_wrong"})
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_token"
    r = c.get("/v1/reps/R1/priorities", headers={"Authorization": "Basic abc"})
    assert r.status_code == 401


def test_not_loaded_is_503_json_and_health_is_alive(bare_client):
    c, store = bare_client
    secret, _ = store.create(role="admin")
    assert c.get("/health").json() == {"status": "ok", "degraded": False}
    r = c.get("/ready")
    assert r.status_code == 503 and r.json()["error"]["code"] == "not_ready"
    r = c.get("/v1/models", headers={"Authorization": f"Bearer {secret}"})
    assert r.status_code == 503 and r.json()["error"]["code"] == "not_ready"


def test_unknown_route_and_method_are_json(bare_client):
    c, _ = bare_client
    r = c.get("/v2/nothing")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    r = c.delete("/health")
    assert r.status_code == 405 and r.json()["error"]["code"] == "method_not_allowed"


def test_admin_only_endpoints_refuse_reps(bare_client):
    c, store = bare_client
    secret, _ = store.create(role="rep", rep_id="R1")
    r = c.post("/v1/models/reload", headers={"Authorization": f"Bearer {secret}"})
    assert r.status_code == 403 and r.json()["error"]["code"] == "admin_only"
