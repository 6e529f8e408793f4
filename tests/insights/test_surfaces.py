"""The insights commands and routes: contract keys, scopes by role, JSON errors."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from targets.test_api import _state
from typer.testing import CliRunner

from salespilot.cli import app as cli_app
from salespilot.serving.app import create_app
from salespilot.serving.state import MODEL_NAMES, ModelSlot

CHANNEL_KEYS = {"lead_source", "leads", "lead_share", "win_rate", "win_rate_low",
                "win_rate_high", "cycle_days", "avg_value", "retained_value_12m"}  # fmt: skip


@pytest.fixture
def cli(tmp_path, monkeypatch):
    from salespilot.settings import get_settings

    monkeypatch.setenv("SALESPILOT_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("SALESPILOT_TARGETS_SIMULATIONS", "500")
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()


def _json(result) -> dict:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def api(demo_history, tmp_path_factory):
    from salespilot.settings import Settings

    settings = Settings(state_dir=tmp_path_factory.mktemp("insights_api"), targets_simulations=500)
    app = create_app(settings, load=False)
    slots = {n: ModelSlot(n, None, problem=f"{n}: not trained in this test") for n in MODEL_NAMES}
    app.state.holder._state = _state(demo_history, slots)
    tokens = app.state.tokens
    team = sorted(demo_history.reps["team"].unique())[0]
    other = sorted(demo_history.reps["team"].unique())[1]
    rep_id = demo_history.reps["rep_id"].iloc[0]
    headers = {
        who: {"Authorization": f"Bearer {tokens.create(**kw)[0]}"}
        for who, kw in {
            "admin": {"role": "admin"},
            "manager": {"role": "manager", "team": team},
            "rep": {"role": "rep", "rep_id": rep_id},
        }.items()
    }
    with TestClient(app) as client:
        yield client, headers, team, other


def test_channels_json_keeps_the_contract(cli, demo_history_dir):
    out = _json(cli.invoke(cli_app, ["channels", "--data", str(demo_history_dir), "--json"]))
    assert set(out) >= {"channels", "overall"}
    assert all(set(r) >= CHANNEL_KEYS for r in out["channels"])
    assert sum(r["leads"] for r in out["channels"]) == out["overall"]["leads"]


def test_channels_unknown_team_is_one_json_error(cli, demo_history_dir):
    r = cli.invoke(cli_app, ["channels", "--data", str(demo_history_dir), "--team", "x", "--json"])
    assert r.exit_code == 1 and "unknown team" in json.loads(r.stdout)["error"]


def test_channels_route_scopes_a_manager_to_their_team(api):
    client, h, team, other = api
    mine = client.get("/v1/insights/channels", headers=h["manager"])
    assert mine.status_code == 200, mine.text
    assert mine.json()["team"] == team
    everyone = client.get("/v1/insights/channels", headers=h["admin"]).json()
    assert everyone["team"] is None
    assert mine.json()["overall"]["leads"] < everyone["overall"]["leads"]
    assert all(set(r) >= CHANNEL_KEYS for r in everyone["channels"])
    r = client.get("/v1/insights/channels", params={"team": other}, headers=h["manager"])
    assert r.status_code == 403
    assert client.get("/v1/insights/channels", headers=h["rep"]).status_code == 403
    r = client.get("/v1/insights/channels", params={"team": "nowhere"}, headers=h["admin"])
    assert r.status_code == 404


def test_gap_json_keeps_the_contract(cli, demo_history_dir):
    args = ["gap", "NA Enterprise", "--period", "2026-Q2", "--as-of", "2026-05-01"]
    out = _json(cli.invoke(cli_app, [*args, "--data", str(demo_history_dir), "--json"]))
    assert set(out) >= {"period", "scope", "target", "p50", "gap", "causes"}
    assert out["period"] == "2026-Q2" and out["scope"] == "NA Enterprise"
    by_dim: dict[str, float] = {}
    for c in out["causes"]:
        assert set(c) >= {"dimension", "key", "amount", "action"}
        by_dim[c["dimension"]] = by_dim.get(c["dimension"], 0.0) + c["amount"]
    assert {"rep", "funnel", "product_line", "lead_source"} <= set(by_dim)
    for total in by_dim.values():  # rounded to cents per row
        assert abs(total - out["gap"]) <= 0.01 * len(out["causes"])


def test_gap_bad_period_is_one_json_error(cli, demo_history_dir):
    r = cli.invoke(cli_app, ["gap", "NA Enterprise", "--period", "Q5", "--json"])
    assert r.exit_code == 1 and "is not a quarter" in json.loads(r.stdout)["error"]


def test_gap_route_answers_the_manager_of_the_team_only(api):
    client, h, team, other = api
    r = client.get(f"/v1/teams/{team}/gap", params={"period": "2026-Q2"}, headers=h["manager"])
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["scope"] == team and body["target_source"] == "targets table"
    assert client.get(f"/v1/teams/{other}/gap", params={"period": "2026-Q2"},
                      headers=h["manager"]).status_code == 403  # fmt: skip
    assert client.get(f"/v1/teams/{team}/gap", params={"period": "2026-Q9"},
                      headers=h["admin"]).status_code == 422  # fmt: skip
    assert client.get("/v1/teams/nowhere/gap", params={"period": "2026-Q2"},
                      headers=h["admin"]).status_code == 404  # fmt: skip
    assert client.get(f"/v1/teams/{team}/gap", params={"period": "2026-Q2"},
                      headers=h["rep"]).status_code == 403  # fmt: skip


def test_brief_json_keeps_the_contract(cli, demo_history_dir):
    import pandas as pd

    teams = sorted(pd.read_csv(demo_history_dir / "reps.csv")["team"].unique())
    args = ["brief", teams[0], "--as-of", "2026-06-01", "--data", str(demo_history_dir), "--json"]
    out = _json(cli.invoke(cli_app, args))
    assert set(out) >= {"team", "week", "opportunities", "new_opportunities",
                        "avg_stages_per_deal", "silent_customers"}  # fmt: skip
    assert out["team"] == teams[0] and len(out["opportunities"]) == 3
    assert all(set(o) >= {"title", "expected_value", "action"} for o in out["opportunities"])
    r = cli.invoke(cli_app, ["brief", "nowhere", "--data", str(demo_history_dir), "--json"])
    assert r.exit_code == 1 and "unknown team" in json.loads(r.stdout)["error"]


def test_gap_by_region_keeps_the_contract(cli, demo_history_dir):
    args = ["gap", "EMEA", "--by", "region", "--period", "2026-Q1", "--data",
            str(demo_history_dir), "--json"]  # fmt: skip
    whole = _json(cli.invoke(cli_app, args))
    assert whole["scope"] == "EMEA" and whole["by"] == "region"
    assert whole["p50"] == whole["booked"]  # a closed quarter: nothing left to forecast
    parts = [_json(cli.invoke(cli_app, [*args, "--team", t]))
             for t in ("EMEA Central", "EMEA North")]  # fmt: skip
    assert abs(sum(p["gap"] for p in parts) - whole["gap"]) <= 0.02
    assert abs(sum(p["target"] for p in parts) - whole["target"]) <= 0.02
    r = cli.invoke(cli_app, [*args[:2], "--by", "planet", *args[4:]])
    assert (
        r.exit_code == 1
        and "--by is one of team, region, product_line" in json.loads(r.stdout)["error"]
    )


def test_region_gap_route_shows_a_manager_their_teams_reps_only(api, demo_history):
    client, h, team, other = api
    reps = demo_history.reps
    region = reps.loc[reps["team"] == team, "region"].iloc[0]
    elsewhere = sorted(set(reps["region"]) - {region})[0]
    q = {"period": "2026-Q1"}
    mine = client.get(f"/v1/regions/{region}/gap", params=q, headers=h["manager"])
    assert mine.status_code == 200, mine.text
    body = mine.json()
    assert body["by"] == "region" and body["scope"] == f"{region} ({team})"
    as_team = client.get(f"/v1/teams/{team}/gap", params=q, headers=h["manager"]).json()
    assert (body["target"], body["booked"], body["gap"]) == (
        as_team["target"], as_team["booked"], as_team["gap"])  # fmt: skip
    own = set(reps.loc[reps["team"] == team, "rep_id"])
    assert {c["key"] for c in body["causes"] if c["dimension"] == "rep"} <= own
    whole = client.get(f"/v1/regions/{region}/gap", params=q, headers=h["admin"]).json()
    assert whole["scope"] == region and whole["target"] >= body["target"]
    for params, who, status in (
        ({**q, "team": other}, "manager", 403),
        (q, "rep", 403),
    ):
        r = client.get(f"/v1/regions/{region}/gap", params=params, headers=h[who])
        assert r.status_code == status, r.text
    assert client.get(f"/v1/regions/{elsewhere}/gap", params=q,
                      headers=h["manager"]).status_code == 403  # fmt: skip
    assert client.get("/v1/regions/nowhere/gap", params=q, headers=h["manager"]).status_code == 403
    assert client.get("/v1/regions/nowhere/gap", params=q, headers=h["admin"]).status_code == 404


def test_gap_by_product_line_keeps_the_contract_and_shows_its_share(cli, demo_history_dir):
    args = ["gap", "platform", "--by", "product_line", "--team", "NA Enterprise", "--period",
            "2026-Q2", "--as-of", "2026-05-01", "--data", str(demo_history_dir)]  # fmt: skip
    out = _json(cli.invoke(cli_app, [*args, "--json"]))
    assert set(out) >= {"period", "scope", "target", "p50", "gap", "causes"}
    assert out["scope"] == "platform (NA Enterprise)" and out["by"] == "product_line"
    s = out["line_share"]
    assert 0 < s["share"] < 1 and abs(out["target"] - s["share"] * s["scope_target"]) <= 0.01
    for dimension in {c["dimension"] for c in out["causes"]}:
        total = sum(c["amount"] for c in out["causes"] if c["dimension"] == dimension)
        assert abs(total - out["gap"]) <= 0.01 * len(out["causes"])
    text = cli.invoke(cli_app, args)
    assert text.exit_code == 0 and "the line's share:" in text.output
    r = cli.invoke(cli_app, ["gap", "platfrom", *args[2:], "--json"])
    assert r.exit_code == 1 and "did you mean 'platform'" in json.loads(r.stdout)["error"]


def test_product_line_gap_route_is_a_managers_team_share(api):
    client, h, team, other = api
    q = {"period": "2026-Q1"}
    mine = client.get("/v1/product-lines/platform/gap", params=q, headers=h["manager"])
    assert mine.status_code == 200, mine.text
    body = mine.json()
    assert body["by"] == "product_line" and body["scope"] == f"platform ({team})"
    as_team = client.get(f"/v1/teams/{team}/gap", params=q, headers=h["manager"]).json()
    assert body["line_share"]["scope_target"] == as_team["target"]
    assert body["target"] < as_team["target"]
    whole = client.get("/v1/product-lines/platform/gap", params=q, headers=h["admin"]).json()
    assert whole["scope"] == "platform" and whole["target"] > body["target"]
    get = client.get
    assert get("/v1/product-lines/platform/gap", params={**q, "team": other},
               headers=h["manager"]).status_code == 403  # fmt: skip
    assert get("/v1/product-lines/platform/gap", params=q, headers=h["rep"]).status_code == 403
    assert get("/v1/product-lines/nothing/gap", params=q, headers=h["admin"]).status_code == 404
