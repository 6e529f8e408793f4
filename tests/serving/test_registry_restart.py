"""A tracking server that stops and comes back under a running service (issue: a reload hung
for minutes, said "run salespilot train first" and stayed degraded after the store returned).

The tracking server is MLflow's own server application (its REST handlers over a copy of the
trained registry), served over real HTTP on loopback, stopped and started on the same port.
"""

from __future__ import annotations

import shutil
import socket
import threading

import pytest


class TrackingServer:
    """MLflow's tracking server app on 127.0.0.1:``port``; ``stop`` closes the port."""

    def __init__(self, db_uri: str, port: int = 0) -> None:
        from mlflow.server import app, handlers
        from werkzeug.serving import make_server

        handlers._tracking_store = handlers._model_registry_store = None
        handlers._get_tracking_store(db_uri, None)
        handlers._get_model_registry_store(db_uri)
        self._server = make_server("127.0.0.1", port, app, threaded=True)
        self.port = self._server.server_port
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


@pytest.fixture
def registry_copy(serving_settings, tmp_path):
    """A private copy of the trained registry (the model files stay where they were logged)."""
    db = tmp_path / "mlflow.db"
    shutil.copy(serving_settings.mlflow_tracking_uri.removeprefix("sqlite:///"), db)
    yield f"sqlite:///{db}"
    from mlflow.server import handlers

    handlers._tracking_store = handlers._model_registry_store = None


def test_the_tracking_server_stops_and_comes_back_under_a_running_service(
    client, serving_settings, registry_copy, people
):
    server = TrackingServer(registry_copy)
    holder, c, admin, rep = client.app.state.holder, client, people.h("admin"), people.h("rep")
    holder.settings = serving_settings.model_copy(
        update={
            "mlflow_tracking_uri": f"http://svc:s3cret@127.0.0.1:{server.port}",
            "serving_registry_timeout_s": 2,
        }
    )
    try:
        up = c.post("/v1/models/reload", headers=admin).json()  # served through the server
        assert up["degraded"] is False and up["problems"] == [], up
        versions = up["models"]
        before = c.get(f"/v1/reps/{people.rep}/priorities", headers=rep).json()

        server.stop()  # the tracking server goes away
        r = c.post("/v1/models/reload", headers=admin).json()
        assert r["degraded"] is True and r["models"] == versions
        assert len(r["problems"]) == 3
        assert all("unreachable" in p for p in r["problems"]), r["problems"]
        assert not any("salespilot train" in p for p in r["problems"])
        ready = c.get("/ready").json()
        assert ready["ready"] is True and ready["degraded"] is True
        assert not any("s3cret" in p for p in ready["problems"])  # anonymous: redacted
        assert c.get("/health").json() == {"status": "degraded", "degraded": True}
        # the last good models still serve, the same list
        after = c.get(f"/v1/reps/{people.rep}/priorities", headers=rep)
        assert after.status_code == 200
        assert [i["entity_id"] for i in after.json()["items"]] == [
            i["entity_id"] for i in before["items"]
        ]

        server = TrackingServer(registry_copy, port=server.port)  # it comes back
        r = c.post("/v1/models/reload", headers=admin).json()
        assert r["degraded"] is False and r["problems"] == [] and r["models"] == versions
        assert c.get("/ready").json()["degraded"] is False
        assert c.get("/health").json() == {"status": "ok", "degraded": False}
    finally:
        server.stop()
        holder.settings = serving_settings
        assert c.post("/v1/models/reload", headers=admin).json()["degraded"] is False


def test_a_server_that_never_answers_is_degraded_after_the_timeout(
    client, serving_settings, people
):
    """A port that accepts connections and says nothing: the reload gives up after the bounded
    timeout (retries included) and reports the registry unreachable, not a missing model."""
    hole = socket.socket()
    hole.bind(("127.0.0.1", 0))
    hole.listen(8)  # never accepted, never answered
    holder = client.app.state.holder
    try:
        holder.settings = serving_settings.model_copy(
            update={
                "mlflow_tracking_uri": f"http://127.0.0.1:{hole.getsockname()[1]}",
                "serving_registry_timeout_s": 0.2,
            }
        )
        r = client.post("/v1/models/reload", headers=people.h("admin")).json()
        assert r["degraded"] is True
        assert all("unreachable" in p and "0.2s" in p for p in r["problems"]), r["problems"]
    finally:
        hole.close()
        holder.settings = serving_settings
        r = client.post("/v1/models/reload", headers=people.h("admin")).json()
        assert r["degraded"] is False, r["problems"]


def test_a_sqlite_store_moved_away_and_back_recovers(client, serving_settings, people):
    """A missing store file is reported (and not recreated empty); back in place, the next
    reload opens it afresh."""
    from pathlib import Path

    db = Path(serving_settings.mlflow_tracking_uri.removeprefix("sqlite:///"))
    aside = db.with_name("moved-away.db")
    holder = client.app.state.holder
    db.rename(aside)
    try:
        r = client.post("/v1/models/reload", headers=people.h("admin")).json()
        assert r["degraded"] is True and not db.exists()
        assert all("no model registry" in p for p in r["problems"]), r["problems"]
    finally:
        aside.rename(db)
    r = client.post("/v1/models/reload", headers=people.h("admin")).json()
    assert r["degraded"] is False, r["problems"]
    assert holder.state.degraded is False
