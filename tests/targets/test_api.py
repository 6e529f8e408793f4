"""API: /v1/targets/recommendations and /v1/teams/{team}/health through the real app."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from salespilot.features.pit import data_as_of
from salespilot.serving.app import create_app
from salespilot.serving.state import MODEL_NAMES, ModelSlot, ServingState


def _state(history, slots) -> ServingState:
    """A serving state holding the history and no models: all the targets routes read."""
    from datetime import UTC, datetime

    return ServingState(
        loaded_at=datetime.now(UTC),
        as_of=data_as_of(history),
        history_source=history,
        source=None,
        content_hash=None,
        models=slots,
        reps=history.reps.set_index("rep_id"),
        rep_timezones={},
        account_owner={},
        account_names={},
        contact_account={},
        contact_zone={},
        contact_role={},
        deal_owner={},
        win=None,
        churn=None,
        rep_items={},
        rep_items_json={},
        at_risk=(),
    )


@pytest.fixture(scope="module")
def api(small_history, tmp_path_factory):
    from salespilot.settings import Settings

    state_dir = tmp_path_factory.mktemp("targets_api")
    settings = Settings(state_dir=state_dir, targets_simulations=500)
    app = create_app(settings, load=False)
    slots = {n: ModelSlot(n, None, problem=f"{n}: not trained in this test") for n in MODEL_NAMES}
    app.state.holder._state = _state(small_history, slots)
    tokens = app.state.tokens
    headers = {
        who: {"Authorization": f"Bearer {tokens.create(**kw)[0]}"}
        for who, kw in {
            "admin": {"role": "admin"},
            "north": {"role": "manager", "team": "north"},
            "south": {"role": "manager", "team": "south"},
            "rep": {"role": "rep", "rep_id": "R000"},
        }.items()
    }
    with TestClient(app) as client:
        yield client, headers


def test_manager_gets_their_teams_targets(api):
    client, h = api
    r = client.post(
        "/v1/targets/recommendations",
        json={"period": "2026-Q1", "unit": "rep", "top_down": 300000},
        headers=h["north"],
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["team"] == "north"
    assert {u["team"] for u in body["units"]} == {"north"}
    assert sum(u["allocated"] for u in body["units"]) == pytest.approx(300000, abs=1)
    unit = body["units"][0]
    assert unit["p10"] <= unit["p50"] <= unit["p90"]
    assert unit["activity_plan"]["leads_per_week"] >= 0
    assert body["total"]["top_down"] == 300000


def test_targets_access_rules(api):
    client, h = api
    req = {"period": "2026-Q1", "unit": "team"}
    assert client.post("/v1/targets/recommendations", json=req).status_code == 401
    r = client.post(
        "/v1/targets/recommendations", json={**req, "team": "south"}, headers=h["north"]
    )
    assert r.status_code == 403 and "error" in r.json()
    assert client.post("/v1/targets/recommendations", json=req, headers=h["rep"]).status_code == 403
    r = client.post("/v1/targets/recommendations", json=req, headers=h["admin"])
    assert r.status_code == 200
    assert {u["unit"] for u in r.json()["units"]} == {"north", "south"}


def test_targets_bad_parameters(api):
    client, h = api
    for bad in (
        {"period": "Q1-2026"},
        {"period": "2026-Q1", "unit": "planet"},
        {"period": "2026-Q1", "base_quantile": 1.5},
        {"period": "2026-Q1", "base_quantile": 0.8, "stretch_quantile": 0.5},
        {"period": "2024-Q1"},
    ):
        r = client.post("/v1/targets/recommendations", json=bad, headers=h["admin"])
        assert r.status_code == 422, bad
        assert "error" in r.json()
    r = client.post(
        "/v1/targets/recommendations",
        json={"period": "2026-Q1", "team": "nowhere"},
        headers=h["admin"],
    )
    assert r.status_code == 404


def test_health_access_rules(api):
    client, h = api
    assert client.get("/v1/teams/north/health").status_code == 401
    assert client.get("/v1/teams/south/health", headers=h["north"]).status_code == 403
    assert client.get("/v1/teams/north/health", headers=h["rep"]).status_code == 403
    assert client.get("/v1/teams/nowhere/health", headers=h["admin"]).status_code == 404
    r = client.get("/v1/teams/north/health", headers=h["north"])
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["team"] == "north" and len(body["weeks"]) == 8
    assert {row["rep_id"] for row in body["reps"]} <= {f"R{i:03d}" for i in range(0, 12, 2)}
    assert client.get("/v1/teams/south/health", headers=h["admin"]).status_code == 200


def test_targets_far_periods_and_infinite_numbers_are_422(api):
    """Years pandas cannot hold (9999-Q4 was a 500) and a JSON ``Infinity`` are refused."""
    client, h = api
    for period in ("9999-Q4", "2262-Q1", "2262-Q2", "2200-01", "1000-Q1"):
        r = client.post("/v1/targets/recommendations", json={"period": period}, headers=h["admin"])
        assert r.status_code == 422, (period, r.text)
        assert r.json()["error"]["code"] == "bad_period" and "year" in r.json()["error"]["message"]
    for number in ("Infinity", "NaN", "-Infinity"):
        r = client.post(
            "/v1/targets/recommendations",
            content='{"period": "2026-Q3", "top_down": ' + number + "}",
            headers={**h["admin"], "Content-Type": "application/json"},
        )
        assert r.status_code == 422, (number, r.text)
