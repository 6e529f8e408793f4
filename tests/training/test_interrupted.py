"""kill -9 during training right after registration: the half-made version is marked failed
at the next start and is never promoted or served."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import mlflow
import pytest

from salespilot.settings import Settings
from salespilot.training import RegistryError, compare, load_model, promote, train_model
from tests.training.synthetic import synthetic_frame, synthetic_spec

ROOT = Path(__file__).resolve().parents[2]

# A real training in its own process that kills itself with SIGKILL the moment the model is
# registered (its own progress message), inside the MLflow run: nothing after it runs.
KILLED_TRAINING = textwrap.dedent(
    """
    import os, signal, sys
    from salespilot.settings import Settings
    from salespilot.training import train_model
    from tests.training.synthetic import synthetic_frame, synthetic_spec

    def progress(message):
        print(message, flush=True)
        if "registered as" in message:
            os.kill(os.getpid(), signal.SIGKILL)

    settings = Settings(state_dir=sys.argv[1])
    train_model(synthetic_spec(), None, settings, frame=synthetic_frame(1500, seed=1),
                figures=False, progress=progress)
    """
)


@pytest.fixture(scope="module")
def interrupted(tmp_path_factory):
    """A registry with champion v1 and a v2 whose training was killed after registering it."""
    state = tmp_path_factory.mktemp("interrupted")
    settings = Settings(state_dir=state)
    spec = synthetic_spec()
    first = train_model(spec, None, settings, frame=synthetic_frame(1500), figures=False)
    if not first.champion:  # too few rows for the readiness verdict: promoted by hand
        promote(spec.name, first.version, settings=settings)
    done = subprocess.run(
        [sys.executable, "-c", KILLED_TRAINING, str(state)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr[-2000:]
    assert f"{spec.name}: registered as v2" in done.stdout
    return settings, spec, first


def test_the_kill_leaves_the_half_made_state_the_issue_describes(interrupted):
    settings, spec, _ = interrupted
    raw = mlflow.MlflowClient(settings.mlflow_tracking_uri, settings.mlflow_tracking_uri)
    mv = raw.get_model_version(spec.name, "2")  # read before any salespilot call sweeps it
    # registered with its data tags in one write, but never judged: no promotion tag
    assert "history_hash" in (mv.tags or {}) and "promotion" not in (mv.tags or {})
    assert raw.get_run(mv.run_id).info.status == "RUNNING"


def test_compare_lists_it_failed_and_its_run_ends_killed(interrupted):
    settings, spec, _ = interrupted
    rows = {r["version"]: r for r in compare(spec.name, settings=settings)}
    assert rows["1"]["aliases"] == ["champion"]
    assert rows["2"]["promotion"] == "failed" and rows["2"]["aliases"] == []
    assert "half-made" in rows["2"]["reason"] and "before it was judged" in rows["2"]["reason"]
    raw = mlflow.MlflowClient(settings.mlflow_tracking_uri)
    assert raw.get_run(rows["2"]["run_id"]).info.status == "KILLED"
    json.dumps(rows["2"])  # the CLI's JSON still serialises


def test_it_is_never_promoted_nor_served(interrupted):
    settings, spec, first = interrupted
    with pytest.raises(RegistryError, match=r"v2 cannot be promoted: v2 failed: .*half-made"):
        promote(spec.name, "2", settings=settings)
    assert load_model(spec.name, settings=settings).version == first.version == "1"
    with pytest.raises(RegistryError, match="cannot be served: v2 failed"):
        load_model(spec.name, version="2", settings=settings)
    # an alias moved onto it by hand (the MLflow UI) does not make it servable either
    raw = mlflow.MlflowClient(settings.mlflow_tracking_uri, settings.mlflow_tracking_uri)
    raw.set_registered_model_alias(spec.name, "staging", "2")
    with pytest.raises(RegistryError, match="@staging cannot be served"):
        load_model(spec.name, alias="staging", settings=settings)


def test_the_next_training_goes_on_from_there(interrupted):
    settings, spec, _ = interrupted
    third = train_model(spec, None, settings, frame=synthetic_frame(1500, seed=2), figures=False)
    assert third.version == "3" and third.reason
    rows = {r["version"]: r["promotion"] for r in compare(spec.name, settings=settings)}
    assert rows["2"] == "failed" and rows["3"] in ("champion", "challenger")
