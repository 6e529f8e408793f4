"""morning_lists and train_models end to end, with the real models trained on demo data."""

from __future__ import annotations

import json
import shutil

import pytest

from tests.flows.test_delivery import Receiver


@pytest.fixture
def trained_copy(tmp_path, trained_state, monkeypatch):
    """A private copy of the trained state folder (registry and all), selected by env."""
    state = tmp_path / "state"
    shutil.copytree(trained_state.state_dir, state)
    monkeypatch.setenv("SALESPILOT_STATE_DIR", str(state))
    monkeypatch.setenv("SALESPILOT_DATA_DIR", str(trained_state.data_dir))
    monkeypatch.setenv("SALESPILOT_WEBHOOK_RETRY_DELAY_S", "0")
    return state


def test_morning_lists_are_written_for_every_active_rep_and_pushed(trained_copy, demo_history):
    from salespilot.flows.morning import morning_lists

    receiver = Receiver(fail_first=1)
    try:
        result = morning_lists(webhook_url=receiver.url, limit=5)
    finally:
        receiver.close()
    reps = demo_history.reps
    active = sorted(reps.loc[reps["left_at"].isna(), "rep_id"])
    assert result["reps"] == active
    assert result["failed"] == [] and len(result["delivered"]) == len(active)
    day = result["as_of"]
    for rep_id in active:
        body = json.loads((trained_copy / "lists" / day / f"{rep_id}.json").read_text())
        assert body["rep_id"] == rep_id
        assert len(body["items"]) <= 5
        scores = [i["value_at_stake"] for i in body["items"]]
        assert scores == sorted(scores, reverse=True)
    # one POST per rep accepted, each carrying that rep's list
    assert sorted(a["body"]["rep_id"] for a in receiver.accepted) == active


def test_a_failing_model_leaves_its_champion_alone_and_the_others_train(trained_copy):
    from salespilot.flows.training_flow import train_models
    from salespilot.settings import Settings
    from salespilot.training.promotion import current_champion

    settings = Settings()
    before = {m: current_champion(settings, m) for m in ("win_probability", "churn_risk")}
    result = train_models(
        models=["win_probability", "churn_risk"],
        params={"win_probability": {"num_leaves": -3}},
    )
    assert "error" in result["win_probability"]
    assert "metrics" in result["churn_risk"] and result["churn_risk"]["version"]
    assert current_champion(settings, "win_probability") == before["win_probability"]

    # the demo's summary: the failure in its row; the rule column is the rule, not the regression
    from salespilot.cli.demo import model_table_rows

    failed, churn = model_table_rows(result)
    assert failed[0] == "win_probability" and failed[1] == "-" and failed[2]
    res = result["churn_risk"]
    rule = res["baselines"]["days_since_contact_rule"]["roc_auc"]
    regression = res["baselines"]["logistic_regression"]["roc_auc"]
    verdict = res["readiness"]["verdict"].replace("_", " ")
    assert churn[1] in (
        f"{res['version']} challenger, {verdict}",
        f"{res['version']} champion, {verdict}",
    )
    assert churn[2] == f"{res['metrics']['roc_auc']:.3f}"
    assert churn[3] == f"{regression:.3f}"
    assert churn[4] == f"{rule:.3f} (days_since_contact_rule)"


def test_only_transient_errors_are_retried():
    from salespilot.flows.training_flow import is_transient

    assert is_transient(ConnectionError("tracking server refused the connection"))
    assert is_transient(RuntimeError("sqlite3.OperationalError: database is locked"))
    assert not is_transient(ValueError("too few won deals: 12, need 50"))
    assert not is_transient(KeyError("num_leaves"))
