"""The server's start reads the serving export: no MLflow, no scikit-learn on the start path."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd

START = """
import hashlib, json, sys
from salespilot.serving.app import create_app
from salespilot.serving.models_info import readiness
from salespilot.serving.priorities import rep_priorities_json
from salespilot.settings import Settings

app = create_app(Settings(), load=False)
holder = app.state.holder
state = holder.reload(trust_export=True)
first = rep_priorities_json(state, sys.argv[1], 50)  # a rep's first list after ready
ready = {
    "ready": readiness(holder).ready,
    "versions": state.versions,
    "problems": list(state.problems),
    "mlflow": "mlflow" in sys.modules,
    "sklearn": "sklearn" in sys.modules,
    "lightgbm": "lightgbm" in sys.modules,
    "parsed": [s.model.model.booster_loaded for s in state.models.values()],
    "list": hashlib.sha256(first).hexdigest(),
    # the activities wait for the ready server (or a request reading the history)
    "history_read": state.history_source.running() or state.history_source.done(),
}
model = state.model("win_probability").model
trees = model.booster.num_trees()  # the first use parses it
print(json.dumps({**ready, "trees": trees, "sklearn_after": "sklearn" in sys.modules}))
"""


def test_the_server_state_loads_without_mlflow_or_scikit_learn(client, serving_settings, people):
    from salespilot.serving.priorities import rep_priorities_json

    state = client.app.state.holder.state
    served = state.versions  # that start wrote the export
    env = {
        **os.environ,
        "SALESPILOT_STATE_DIR": str(serving_settings.state_dir),
        "SALESPILOT_DATA_DIR": str(serving_settings.data_dir),
        "SALESPILOT_MLFLOW_TRACKING_URI": serving_settings.mlflow_tracking_uri,
    }
    out = subprocess.run(
        [sys.executable, "-c", START, people.rep],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["versions"] == served and got["problems"] == [] and got["ready"]
    # the rep's first list is the one served, from the stored lists, the activities unread
    assert got["list"] == hashlib.sha256(rep_priorities_json(state, people.rep, 50)).hexdigest()
    assert got["history_read"] is False, "the start read the activities"
    assert got["mlflow"] is False, "the start imported MLflow"
    assert got["sklearn"] is False, "the start imported scikit-learn"
    # the stored lists serve the start: the boosters are parsed after it, or at first use
    assert got["lightgbm"] is False, "the start imported LightGBM"
    assert got["parsed"] == [False, False, False]
    assert got["trees"] > 0 and got["sklearn_after"] is False


def test_a_lazily_read_booster_scores_as_the_one_read_at_once(serving_settings, client):
    from salespilot.training.export import load_exported

    lazy = load_exported(serving_settings, "win_probability", "champion", lazy=True)
    eager = load_exported(serving_settings, "win_probability", "champion")
    assert not lazy.model.booster_loaded and eager.model.booster_loaded
    rows = client.app.state.holder.state.win.values.head(200)
    np.testing.assert_array_equal(lazy.predict_proba(rows), eager.predict_proba(rows))
    assert lazy.model.booster_loaded


def test_a_start_reads_the_activities_once_wanted(serving_settings, client):
    """A start's history waits to be wanted: by the ready server's check
    (:meth:`StateHolder.after_start`) or by whatever reads it first; a reload's is read at
    once. Either way, the same history."""
    from salespilot.serving import stored_state
    from salespilot.serving.state import StateHolder, build_state

    served = client.app.state.holder.state
    started = build_state(serving_settings, trust_export=True)
    arriving = started.history_source
    assert isinstance(arriving, stored_state.HistoryArriving)
    assert not arriving.wanted and not arriving.running() and not arriving.done()
    assert started.present_tables == served.history.present_tables  # without waiting
    holder = StateHolder(serving_settings)
    holder._state = started
    holder.after_start()  # the registry agrees: no reload; the activities are wanted now
    assert holder.state is started and arriving.wanted
    got = arriving.result(timeout=120).activities
    pd.testing.assert_frame_equal(got, served.history.activities)
    asked = build_state(serving_settings, trust_export=True)
    assert not asked.history_source.wanted
    pd.testing.assert_frame_equal(asked.history.activities, served.history.activities)
    assert asked.history_source.wanted  # reading it wanted it
    reloading = stored_state.prefetch(serving_settings, served.data_signature)
    assert reloading is not None and reloading.history.wanted


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
