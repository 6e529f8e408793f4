"""Reloading swaps the whole state atomically; a broken registry keeps the last good models."""

from __future__ import annotations

import shutil
import threading

from fastapi.testclient import TestClient

from salespilot.serving.app import create_app


def test_reload_under_concurrent_requests_fails_none(client, people):
    """Four clients hammer the list while the admin reloads twice: every request is a 200."""
    app = client.app
    url = f"/v1/reps/{people.rep}/priorities?limit=20"
    statuses: list[int] = []
    stop = threading.Event()
    first = app.state.holder.state

    def hammer() -> None:
        while not stop.is_set():
            statuses.append(client.get(url, headers=people.h("rep")).status_code)

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for t in threads:
        t.start()
    reloads = [client.post("/v1/models/reload", headers=people.h("admin")) for _ in range(2)]
    stop.set()
    for t in threads:
        t.join()
    assert [r.status_code for r in reloads] == [200, 200]
    assert all(r.json()["reloaded"] and not r.json()["degraded"] for r in reloads)
    assert app.state.holder.state is not first
    assert app.state.holder.state.loaded_at > first.loaded_at
    assert len(statuses) > 0 and set(statuses) == {200}


def test_unreachable_registry_keeps_last_good_models(client, serving_settings, people, tmp_path):
    app, c = client.app, client
    broken = tmp_path / "broken.db"
    broken.write_bytes(b"this is not a sqlite database" * 100)
    try:
        before = c.get(f"/v1/reps/{people.rep}/priorities", headers=people.h("rep")).json()
        app.state.holder.settings = serving_settings.model_copy(
            update={"mlflow_tracking_uri": f"sqlite:///{broken}"}
        )
        r = c.post("/v1/models/reload", headers=people.h("admin"))
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["degraded"] is True and len(body["problems"]) == 3
        assert body["models"] == before["model_versions"]

        ready = c.get("/ready").json()
        assert ready["ready"] is True and ready["degraded"] is True and ready["problems"]
        models = c.get("/v1/models", headers=people.h("admin")).json()
        assert models["degraded"] is True
        assert all(m["stale"] and m["loaded"] and m["problem"] for m in models["models"])

        after = c.get(f"/v1/reps/{people.rep}/priorities", headers=people.h("rep"))
        assert after.status_code == 200
        assert [i["entity_id"] for i in after.json()["items"]] == [
            i["entity_id"] for i in before["items"]
        ]

    finally:  # the registry comes back: the next reload clears the degraded flag
        app.state.holder.settings = serving_settings
        assert c.post("/v1/models/reload", headers=people.h("admin")).json()["degraded"] is False


def test_no_registry_and_no_export_at_start_is_not_ready(serving_settings, people, tmp_path):
    broken = tmp_path / "broken.db"
    broken.write_bytes(b"garbage" * 100)
    state_dir = tmp_path / "state"  # the tokens, without the serving export
    shutil.copytree(serving_settings.state_dir, state_dir, ignore=shutil.ignore_patterns("export"))
    app = create_app(
        serving_settings.model_copy(
            update={"mlflow_tracking_uri": f"sqlite:///{broken}", "state_dir": state_dir}
        )
    )
    with TestClient(app) as c:
        r = c.get("/ready")
        assert r.status_code == 503 and r.json()["error"]["code"] == "not_ready"
        r = c.get(f"/v1/reps/{people.rep}/priorities", headers=people.h("rep"))
        assert r.status_code == 503 and r.json()["error"]["code"] == "model_unavailable"


def test_an_unreadable_registry_at_start_serves_the_export_degraded(
    client, serving_settings, people, tmp_path
):
    """The export the last start (or promotion) wrote serves without the registry; the check
    against the registry after the start says it could not confirm it: ready, degraded."""
    broken = tmp_path / "broken.db"
    broken.write_bytes(b"garbage" * 100)
    versions = client.app.state.holder.state.versions
    app = create_app(
        serving_settings.model_copy(update={"mlflow_tracking_uri": f"sqlite:///{broken}"})
    )
    with TestClient(app) as c:
        holder = app.state.holder
        assert holder.state.versions == versions
        assert holder.check_registry() is False
        r = c.get("/ready")
        assert r.status_code == 200 and r.json()["degraded"] is True
        assert any("could not be read" in p for p in r.json()["problems"])
        r = c.get(f"/v1/reps/{people.rep}/priorities", headers=people.h("rep"))
        assert r.status_code == 200
