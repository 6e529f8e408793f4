"""weekly_briefs end to end: stored, pushed through the outbox, logged to MLflow."""

from __future__ import annotations

import json
from pathlib import Path

from tests.flows.test_delivery import Receiver


def test_weekly_briefs_are_stored_pushed_and_logged(
    tmp_path, demo_history_dir, monkeypatch, mlflow_template
):
    import mlflow

    from salespilot.flows.brief_flow import weekly_briefs
    from salespilot.settings import Settings

    monkeypatch.setenv("SALESPILOT_STATE_DIR", str(mlflow_template(tmp_path / "state")))
    monkeypatch.setenv("SALESPILOT_TARGETS_SIMULATIONS", "300")
    monkeypatch.setenv("SALESPILOT_WEBHOOK_RETRY_DELAY_S", "0")
    receiver = Receiver(fail_first=1)
    try:
        result = weekly_briefs(
            teams=["NA Enterprise"],
            data_dir=str(demo_history_dir),
            webhook_url=receiver.url,
        )
    finally:
        receiver.close()
    assert result["teams"] == ["NA Enterprise"]
    assert result["failed"] == [] and len(result["delivered"]) == 1
    for path in result["briefs"]:
        brief = json.loads(Path(path).read_text())
        assert len(brief["opportunities"]) == 3 and brief["week"] == result["week"]
    assert sorted(a["body"]["team"] for a in receiver.accepted) == result["teams"]
    assert all(a["body"]["kind"] == "weekly_brief" for a in receiver.accepted)
    settings = Settings()
    client = mlflow.MlflowClient(settings.mlflow_tracking_uri)
    files = client.list_artifacts(result["mlflow_run_id"], f"briefs/{result['week']}")
    assert [f.path.rsplit("/", 1)[-1] for f in files] == ["na-enterprise.json"]
    exp = client.get_experiment(client.get_run(result["mlflow_run_id"]).info.experiment_id)
    assert exp.tags["mlflow.experimentKind"] == "custom_model_development"
