"""The server's start reads the serving export: no MLflow, no scikit-learn on the start path."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys

START = """
import json, sys
from salespilot.serving.app import create_app
from salespilot.settings import Settings

app = create_app(Settings(), load=False)
holder = app.state.holder
state = holder.reload(trust_export=True)
print(json.dumps({
    "versions": state.versions,
    "problems": list(state.problems),
    "mlflow": "mlflow" in sys.modules,
    "sklearn": "sklearn" in sys.modules,
}))
"""


def test_the_server_state_loads_without_mlflow_or_scikit_learn(client, serving_settings):
    served = client.app.state.holder.state.versions  # that start wrote the export
    env = {
        **os.environ,
        "SALESPILOT_STATE_DIR": str(serving_settings.state_dir),
        "SALESPILOT_DATA_DIR": str(serving_settings.data_dir),
        "SALESPILOT_MLFLOW_TRACKING_URI": serving_settings.mlflow_tracking_uri,
    }
    out = subprocess.run(
        [sys.executable, "-c", START], env=env, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr[-2000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["versions"] == served and got["problems"] == []
    assert got["mlflow"] is False, "the start imported MLflow"
    assert got["sklearn"] is False, "the start imported scikit-learn"


def test_the_check_after_the_start_reloads_when_the_registry_moved(client, serving_settings):
    """The state serves what the export said; when the registry's alias points elsewhere (moved
    outside the promotion functions), the check reloads through the registry; else it keeps it."""
    from salespilot.serving.state import StateHolder

    served = client.app.state.holder.state
    holder = StateHolder(serving_settings)
    holder._state = served
    assert holder.check_registry() is False and holder.state is served
    slots = dict(served.models)
    slots["win_probability"] = dataclasses.replace(slots["win_probability"], version="0")
    holder._state = dataclasses.replace(served, models=slots)
    assert holder.check_registry() is True
    assert holder.state.versions == served.versions and holder.registry_problem is None
