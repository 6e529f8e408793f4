"""MLflow registry: every run registered; champion only when it beats the champion; rollback."""

from __future__ import annotations

import numpy as np
import pytest

from salespilot.settings import Settings
from salespilot.training import RegistryError, compare, load_model, promote, rollback, train_model
from tests.training.synthetic import synthetic_frame, synthetic_spec

WORSE = {"num_leaves": 2, "learning_rate": 0.01, "num_boost_round": 3, "feature_fraction": 0.3}


@pytest.fixture(scope="module")
def registry_state(tmp_path_factory, mlflow_template):
    settings = Settings(state_dir=mlflow_template(tmp_path_factory.mktemp("registry-state")))
    frame = synthetic_frame(5000)
    spec = synthetic_spec()
    oracle = lambda rows: rows["p_true"].to_numpy()  # noqa: E731
    first = train_model(spec, None, settings, frame=frame, oracle=oracle)
    worse = train_model(
        spec, None, settings, frame=frame, oracle=oracle, params=WORSE, figures=False
    )
    return settings, spec, frame, first, worse


def test_first_version_becomes_champion_with_figures_and_metrics(registry_state):
    settings, _, _, first, _ = registry_state
    assert first.version == "1" and first.champion
    out = first.to_json()
    for key in ("metrics", "baselines", "oracle", "version", "champion"):
        assert key in out
    assert set(out["baselines"]) == {"logistic_regression", "stage_rule"}
    import mlflow

    client = mlflow.MlflowClient(settings.mlflow_tracking_uri)
    arts = {a.path for a in client.list_artifacts(first.run_id, "figures")}
    assert arts == {
        "figures/calibration_curve.png",
        "figures/lift_chart.png",
        "figures/shap_summary.png",
    }
    run = client.get_run(first.run_id)
    assert run.data.tags["history_hash"] and "feature_set_version" in run.data.tags
    data = run.data.tags["history_hash"][:8]
    assert run.info.run_name == f"{first.evaluation.spec.name} v1 data {data}"
    assert client.get_run(registry_state[4].run_id).info.run_name.endswith(f"v2 data {data}")
    assert run.data.metrics["roc_auc"] == pytest.approx(first.evaluation.metrics["roc_auc"])
    assert (
        "baseline.stage_rule.roc_auc" in run.data.metrics and "oracle.roc_auc" in run.data.metrics
    )


def test_the_experiment_is_tagged_to_open_on_its_training_runs(registry_state):
    """MLflow 3's UI reads ``mlflow.experimentKind``: an untagged experiment may open on traces."""
    import mlflow

    from salespilot.training.tracking import ensure_experiment

    settings, spec, _, first, _ = registry_state
    client = mlflow.MlflowClient(settings.mlflow_tracking_uri)
    exp = client.get_experiment(client.get_run(first.run_id).info.experiment_id)
    assert exp.name == spec.name
    assert exp.tags["mlflow.experimentKind"] == "custom_model_development"
    # an experiment made before the tag existed gets it on its next run
    old = client.create_experiment("made_untagged")
    assert ensure_experiment(settings, "made_untagged") == old
    assert client.get_experiment(old).tags["mlflow.experimentKind"] == "custom_model_development"


def test_worse_params_stay_challenger_with_the_reason(registry_state):
    settings, spec, *_, worse = registry_state
    assert worse.version == "2" and not worse.champion
    assert "does not beat" in worse.reason and "champion v1" in worse.reason
    versions = {v["version"]: v for v in compare(spec.name, settings=settings)}
    assert versions["1"]["aliases"] == ["champion"]
    assert versions["2"]["aliases"] == ["challenger"]
    assert versions["2"]["reason"] == worse.reason
    assert versions["2"]["metrics"]["roc_auc"] < versions["1"]["metrics"]["roc_auc"]
    assert versions["1"]["history_hash"] == versions["2"]["history_hash"]


def test_loaded_champion_scores_like_the_trained_model(registry_state):
    settings, spec, _, first, _ = registry_state
    loaded = load_model(spec.name, settings=settings)
    assert loaded.version == "1"
    rows = first.evaluation.test.head(50)
    np.testing.assert_allclose(
        loaded.predict_proba(rows), first.evaluation.model.predict_proba(rows)
    )
    contrib = loaded.contributions(rows)
    np.testing.assert_allclose(contrib.sum(axis=1), loaded.raw_score(rows), atol=1e-9)
    assert loaded.readable_names["days_since_last_touch"] == "Days since the last touch"
    assert loaded.features == list(spec.features)
    assert loaded.metrics["roc_auc"] == pytest.approx(first.evaluation.metrics["roc_auc"])
    assert loaded.trained_at.year >= 2025
    import mlflow.pyfunc

    pyfunc = mlflow.pyfunc.load_model(f"models:/{spec.name}@champion")
    out = pyfunc.predict(rows[loaded.features].head(5).astype({"stage": "object"}))
    np.testing.assert_allclose(out["probability"], loaded.predict_proba(rows.head(5)))


def test_promote_then_rollback(registry_state):
    settings, spec, *_ = registry_state
    promote(spec.name, "2", settings=settings)
    assert load_model(spec.name, settings=settings).version == "2"
    assert rollback(spec.name, settings=settings) == "1"
    assert load_model(spec.name, settings=settings).version == "1"
    with pytest.raises(RegistryError, match="no previous champion"):
        rollback(spec.name, settings=settings)
    with pytest.raises(RegistryError, match="no version 9"):
        promote(spec.name, "9", settings=settings)
    with pytest.raises(RegistryError, match=r"has no alias"):
        load_model("nobody", settings=settings)


def test_a_version_with_another_horizon_is_not_promoted_over_the_champion(
    tmp_path, mlflow_template
):
    """Won within 30 days and won within 60 days are different questions: neither beats
    the other on the same rows, so the new version waits for a promotion by hand."""
    import mlflow

    settings = Settings(state_dir=mlflow_template(tmp_path / "state"))
    frame, spec = synthetic_frame(5000), synthetic_spec()
    first = train_model(spec, None, settings, frame=frame, figures=False)
    assert first.champion
    other = train_model(spec, None, settings, frame=frame, figures=False, horizon_days=30)
    assert not other.champion and other.evaluation.spec.horizon_days == 30
    assert f"predicts {spec.horizon_days} days ahead, this version 30" in other.reason
    assert f"salespilot promote {spec.name} {other.version}" in other.reason
    client = mlflow.MlflowClient(settings.mlflow_tracking_uri)
    assert client.get_model_version(spec.name, other.version).tags["horizon_days"] == "30"
    assert load_model(spec.name, settings=settings).version == first.version


def test_a_registered_model_loads_and_predicts_where_salespilot_is_not_installed(registry_state):
    """The registered model carries its own code and requirements: a Python that has the
    model's requirements but not the ``salespilot`` package loads the champion and predicts."""
    import json
    import subprocess
    import sys
    import sysconfig
    from pathlib import Path

    import mlflow

    settings, spec, _, first, _ = registry_state
    loaded = load_model(spec.name, settings=settings)
    rows = first.evaluation.test.head(5)
    local = mlflow.artifacts.download_artifacts(f"models:/{spec.name}/{loaded.version}")
    requirements = Path(local, "requirements.txt").read_text()
    assert "salespilot" not in requirements and "lightgbm==" in requirements
    assert (Path(local) / "code" / "salespilot_scoring.py").is_file()
    script = f"""
import importlib.util, json, sys
sys.path[:0] = [{sysconfig.get_paths()["purelib"]!r}, {sysconfig.get_paths()["platlib"]!r}]
assert importlib.util.find_spec("salespilot") is None, "salespilot must not be importable here"
import mlflow, pandas as pd
mlflow.set_tracking_uri({settings.mlflow_tracking_uri!r})
model = mlflow.pyfunc.load_model("models:/{spec.name}@champion")
rows = pd.DataFrame(json.loads(sys.stdin.read()))
print(json.dumps(model.predict(rows)["probability"].tolist()))
"""
    frame = rows[loaded.features].astype({"stage": "object"})
    done = subprocess.run(
        [sys.executable, "-I", "-S", "-c", script],
        input=frame.to_json(orient="records"),
        capture_output=True,
        text=True,
        cwd=settings.state_dir,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    got = json.loads(done.stdout.strip().splitlines()[-1])
    np.testing.assert_allclose(got, loaded.predict_proba(rows), rtol=1e-9)


def test_a_champion_that_cannot_score_the_new_table_is_replaced_and_the_reason_says_so(
    tmp_path, mlflow_template
):
    """The champion needs ``noise``, which the new feature table no longer has: the new
    version becomes champion, and its reason (the CLI prints it) names why."""
    settings = Settings(state_dir=mlflow_template(tmp_path / "state"))
    frame, spec = synthetic_frame(5000), synthetic_spec()
    first = train_model(spec, None, settings, frame=frame, figures=False)
    assert first.champion
    fewer = synthetic_spec(
        features=tuple(f for f in spec.features if f != "noise"),
        readable_names={k: v for k, v in spec.readable_names.items() if k != "noise"},
    )
    new = train_model(fewer, None, settings, frame=frame.drop(columns="noise"), figures=False)
    assert new.champion
    assert f"champion v{first.version} cannot score the new feature table" in new.reason
    assert "noise" in new.reason
    versions = {v["version"]: v for v in compare(spec.name, settings=settings)}
    assert versions[new.version]["reason"] == new.reason
    assert versions[new.version]["aliases"] == ["champion"]


def test_loading_a_version_prints_nothing(registry_state, capfd):
    settings, spec, *_ = registry_state
    capfd.readouterr()
    load_model(spec.name, settings=settings, version="1")
    out = capfd.readouterr()
    assert "Downloading artifacts" not in out.err + out.out


def test_a_version_pickled_before_models_were_logged_as_code_still_loads(registry_state):
    """Registries made before hold a pickled pyfunc with the model inside: serving loads them."""
    import mlflow

    from salespilot.training.pyfunc import SalesPilotPyfunc
    from salespilot.training.tracking import client

    settings, _, _, first, _ = registry_state
    model = first.evaluation.model
    client(settings)  # the tracking store of these tests
    # an experiment of this store: another module's active experiment may be of another store
    experiment = mlflow.set_experiment("pickled_before")
    with mlflow.start_run(experiment_id=experiment.experiment_id):
        mlflow.pyfunc.log_model(
            name="model",
            python_model=SalesPilotPyfunc(model),
            registered_model_name="pickled_before",
            pip_requirements=["mlflow"],
        )
    loaded = load_model("pickled_before", settings=settings, version="1")
    rows = first.evaluation.test.head(20)
    np.testing.assert_allclose(loaded.predict_proba(rows), model.predict_proba(rows))
