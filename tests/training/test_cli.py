"""The CLI end to end on the small demo history: train --json, challenger, compare, promote, rollback."""

from __future__ import annotations

import json
import shutil

import pytest
from typer.testing import CliRunner

from salespilot.cli import app
from salespilot.settings import get_settings
from tests.terminal import assert_readable_at_80

METRICS = {"roc_auc", "average_precision", "log_loss", "brier_score", "ece", "top_decile_lift"}


@pytest.fixture(scope="module")
def cli_state(tmp_path_factory, mlflow_template):
    mp = pytest.MonkeyPatch()
    mp.setenv("SALESPILOT_STATE_DIR", str(mlflow_template(tmp_path_factory.mktemp("cli-state"))))
    get_settings.cache_clear()
    yield
    mp.undo()
    get_settings.cache_clear()


def run(*args: str):
    # a normal terminal, a pipe or a log: every table must read at 80 columns
    return CliRunner(env={"COLUMNS": "80"}).invoke(app, list(args))


def test_train_json_then_worse_params_stay_challenger(cli_state, demo_history_dir):
    first = run("train", "win_probability", "--data", str(demo_history_dir), "--json")
    assert first.exit_code == 0, first.output
    out = json.loads(first.stdout)
    assert list(out) == ["win_probability"]
    r = out["win_probability"]
    assert set(r["metrics"]) >= METRICS
    assert set(r["baselines"]) == {"logistic_regression", "stage_rule"}
    assert set(r["baselines"]["stage_rule"]) >= METRICS
    assert set(r["oracle"]) >= METRICS
    assert r["version"] == "1" and r["champion"] is True
    won_lost = r["readiness"]["won_vs_lost"]
    assert set(won_lost) == {"won", "lost", "auc", "interval", "age_baseline_auc", "gain_interval"}

    worse = run(
        "train", "win_probability", "--data", str(demo_history_dir), "--json",
        "--params", "num_leaves=2", "--params", "learning_rate=0.01", "--params", "num_boost_round=3",
    )  # fmt: skip
    assert worse.exit_code == 0, worse.output
    w = json.loads(worse.stdout)["win_probability"]
    assert w["version"] == "2" and w["champion"] is False and "champion v1" in w["reason"]

    cmp = json.loads(run("compare", "win_probability", "--json").stdout)
    aliases = {v["version"]: v["aliases"] for v in cmp["versions"]}
    assert aliases == {"1": ["champion"], "2": ["challenger"]}
    assert cmp["versions"][0]["readiness"]["won_vs_lost"] == won_lost

    assert run("promote", "win_probability", "2").exit_code == 0
    cmp = json.loads(run("compare", "win_probability", "--json").stdout)
    assert {v["version"]: v["aliases"] for v in cmp["versions"]}["2"] == ["champion"]
    back = run("rollback", "win_probability")
    assert back.exit_code == 0 and "v1" in back.stdout
    table = run("compare", "win_probability")
    assert table.exit_code == 0 and "registered versions" in table.stdout
    assert_readable_at_80(
        table.stdout, ("champion", "restored by rollback", "brier_score", "horizon", "60 days")
    )
    assert [v["horizon_days"] for v in cmp["versions"]] == ["60", "60"]


def test_model_without_its_tables_is_skipped_with_what_to_add(
    cli_state, demo_history_dir, tmp_path
):
    data = tmp_path / "no-subscriptions"
    shutil.copytree(demo_history_dir, data)
    for f in data.glob("subscriptions.*"):
        f.unlink()
    res = run("train", "churn_risk", "--data", str(data), "--json")
    assert res.exit_code == 0, res.output
    skipped = json.loads(res.stdout)["churn_risk"]["skipped"]
    assert "subscriptions" in skipped and "add subscriptions.csv" in skipped


def test_user_errors_are_messages_not_tracebacks(cli_state, tmp_path):
    res = run("train", "nonsense", "--data", str(tmp_path))
    assert res.exit_code == 1 and "unknown model 'nonsense'" in res.stderr
    res = run("promote", "win_probability", "99")
    assert res.exit_code == 1 and "no version 99" in res.stderr
    res = run("rollback", "nobody")
    assert res.exit_code == 1 and "unknown model 'nobody'" in res.stderr
    for cmd in (["compare", "win_probabilty"], ["promote", "win_probabilty", "1"],
                ["rollback", "win_probabilty"], ["train", "win_probabilty"]):  # fmt: skip
        res = run(*cmd)
        assert res.exit_code == 1, cmd
        assert "did you mean 'win_probability'?" in res.stderr, (cmd, res.stderr)
    assert "Traceback" not in res.output


def test_params_parse_repeated_or_grouped_with_json_types():
    from salespilot.cli.model_cmds import parse_params

    assert parse_params(
        ["num_leaves=2 learning_rate=0.1", "objective=binary,deterministic=true"]
    ) == {
        "num_leaves": 2,
        "learning_rate": 0.1,
        "objective": "binary",
        "deterministic": True,
    }


def test_unknown_params_are_refused_with_the_key(tmp_path):
    r = CliRunner().invoke(
        app, ["train", "win_probability", "--data", str(tmp_path), "--params", "horizon_days=30"]
    )
    assert r.exit_code == 1
    assert "unknown LightGBM parameter(s) 'horizon_days'" in r.output


def test_exclude_leaves_a_feature_out_and_refuses_a_mistyped_one(cli_state, demo_history_dir):
    """``train --exclude`` (what the leak warnings ask for) drops the feature from the model and
    says so in the JSON, the table and on the run; a name the model does not have is refused
    before any training, with the close names; with ``all`` it asks for the model."""
    from mlflow import MlflowClient

    data = str(demo_history_dir)
    typo = run("train", "win_probability", "--data", data, "--exclude", "owner_win_rate_smothed")
    assert typo.exit_code == 1 and "Traceback" not in typo.output
    said = " ".join(typo.stderr.split())
    assert "win_probability: no feature 'owner_win_rate_smothed'" in said
    assert "did you mean 'owner_win_rate_smoothed'" in said
    every = run("train", "all", "--data", data, "--exclude", "owner_win_rate_smoothed")
    assert every.exit_code == 1 and "name the model" in every.stderr

    fast = ("--params", "num_boost_round=20")
    res = run("train", "win_probability", "--data", data, "--json", *fast,
              "--exclude", "owner_win_rate_smoothed,team")  # fmt: skip
    assert res.exit_code == 0, res.output
    r = json.loads(res.stdout)["win_probability"]
    assert r["excluded_features"] == ["owner_win_rate_smoothed", "team"]
    client = MlflowClient(get_settings().mlflow_tracking_uri)
    path = client.download_artifacts(r["run_id"], "features.json")
    with open(path) as f:
        features = json.load(f)["features"]
    assert "owner_win_rate_smoothed" not in features and "team" not in features
    assert "owner_deals_closed" in features
    tags = client.get_run(r["run_id"]).data.tags
    assert tags["excluded_features"] == "owner_win_rate_smoothed,team"
    table = run("train", "win_probability", "--data", data, *fast, "--exclude", "team")
    assert table.exit_code == 0 and "features excluded (--exclude): team" in table.stdout
