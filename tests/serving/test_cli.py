"""The serving CLI: tokens create/list/revoke, and a rep's list in the terminal."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from salespilot.cli import app
from salespilot.serving.auth import TokenStore
from tests.terminal import assert_readable_at_80

runner = CliRunner()


def test_tokens_create_list_revoke(settings, tmp_path, monkeypatch):
    # no history folder: the rep scope is not checked against one
    monkeypatch.setenv("SALESPILOT_DATA_DIR", str(tmp_path / "no-history"))
    r = runner.invoke(app, ["tokens", "create", "--role", "rep", "--rep", "R017", "--json"])
    assert r.exit_code == 0, r.output
    made = json.loads(r.stdout)
    assert made["token"].startswith("sp_") and made["rep_id"] == "R017" and "token_hash" not in made
    store = TokenStore.for_state_dir(settings.state_dir)
    assert store.verify(made["token"]).rep_id == "R017"

    r = runner.invoke(app, ["tokens", "create", "--role", "manager", "--team", "EMEA North"])
    assert r.exit_code == 0 and "sp_" in r.stdout

    listed = json.loads(runner.invoke(app, ["tokens", "list", "--json"]).stdout)["tokens"]
    assert {t["role"] for t in listed} == {"rep", "manager"}
    assert made["token"] not in json.dumps(listed)

    r = runner.invoke(app, ["tokens", "revoke", made["token_id"]])
    assert r.exit_code == 0 and store.verify(made["token"]) is None


def test_tokens_errors_are_readable(settings):
    r = runner.invoke(app, ["tokens", "create", "--role", "manager"])
    assert r.exit_code == 1 and "--team" in r.output and "Traceback" not in r.output
    r = runner.invoke(app, ["tokens", "revoke", "tok_nope"])
    assert r.exit_code == 1 and "no token with id" in r.output


def test_priorities_json_matches_the_api(serving_settings, client, people, monkeypatch):
    for k, v in {
        "SALESPILOT_STATE_DIR": serving_settings.state_dir,
        "SALESPILOT_DATA_DIR": serving_settings.data_dir,
        "SALESPILOT_MLFLOW_TRACKING_URI": serving_settings.mlflow_tracking_uri,
    }.items():
        monkeypatch.setenv(k, str(v))
    r = runner.invoke(app, ["priorities", people.rep, "--limit", "5", "--json"])
    assert r.exit_code == 0, r.output
    cli = json.loads(r.stdout)
    api = client.get(f"/v1/reps/{people.rep}/priorities?limit=5", headers=people.h("rep")).json()
    assert [i["entity_id"] for i in cli["items"]] == [i["entity_id"] for i in api["items"]]
    monkeypatch.setenv("COLUMNS", "80")
    r = runner.invoke(app, ["priorities", people.rep, "--limit", "3"])
    assert r.exit_code == 0 and people.rep in r.stdout
    items = api["items"][:3]
    assert_readable_at_80(r.stdout, tuple(f"{i['value_at_stake']:,.0f}" for i in items))
    assert "won within 60 days" in r.stdout
    if any(i["best_time"] for i in items):
        assert "theirs" in r.stdout and "yours" in r.stdout
    r = runner.invoke(app, ["priorities", "R_NOBODY"])
    assert r.exit_code == 1 and "no rep" in r.output
    # the id matched regardless of case and zero padding, before any model loads
    r = runner.invoke(app, ["priorities", people.rep.lower(), "--limit", "1", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["rep_id"] == people.rep


def test_rep_ids_match_case_and_padding_and_suggest_close_ones():
    from salespilot.features.loader import match_id

    known = ["R00017", "R00018", "R00171"]
    assert match_id("R00017", known) == ("R00017", [])
    assert match_id("r00017", known) == ("R00017", [])
    assert match_id("R17", known) == ("R00017", [])
    found, close = match_id("R0001", known)
    assert found is None and "R00017" in close
    assert match_id("X", known) == (None, [])


def test_read_ids_reads_the_reps_table_alone(demo_history_dir, demo_history, tmp_path):
    from salespilot.features.loader import read_ids

    assert sorted(read_ids(demo_history_dir, "reps")) == sorted(demo_history.reps["rep_id"])
    assert read_ids(tmp_path / "nowhere", "reps") is None


def test_tokens_create_refuses_a_rep_or_team_the_history_does_not_have(
    settings, demo_history_dir, monkeypatch
):
    from salespilot.features.loader import read_ids

    monkeypatch.setenv("SALESPILOT_DATA_DIR", str(demo_history_dir))
    r = runner.invoke(app, ["tokens", "create", "--role", "rep", "--rep", "R99999"])
    assert r.exit_code == 1 and "no rep with id 'R99999'" in r.output
    r = runner.invoke(app, ["tokens", "create", "--role", "rep", "--rep", "r1", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["rep_id"] == "R00001"
    team = sorted(set(read_ids(demo_history_dir, "reps", "team")))[0]
    r = runner.invoke(app, ["tokens", "create", "--role", "manager", "--team", team[:-1]])
    assert r.exit_code == 1 and f"unknown team {team[:-1]!r}; did you mean {team!r}?" in r.output
    r = runner.invoke(app, ["tokens", "create", "--role", "manager", "--team", team, "--json"])
    assert r.exit_code == 0 and json.loads(r.stdout)["team"] == team
