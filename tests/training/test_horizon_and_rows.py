"""User-set label horizons, a stated export end, and every candidate row accounted for.

On a small churn-only export (accounts and subscriptions, no deals): ``train --horizon-days
30`` labels "churned within 30 days", embargoes 30 days, records the horizon on the run and
the version, and its ``--json`` says where each candidate row went.
"""

from __future__ import annotations

import json
from types import SimpleNamespace

import pandas as pd
import pytest
from typer.testing import CliRunner

from salespilot.cli import app
from salespilot.features import training_sets
from salespilot.features.export_end import write_observed_until
from salespilot.features.loader import load_history
from salespilot.features.pit import last_event, observed_end
from salespilot.features.validation import HistoryValidationError
from salespilot.models import SPECS
from salespilot.settings import Settings, get_settings
from salespilot.training.train import horizon_spec
from tests.training.churn_export import END, write_churn_export

NOW = "2026-07-01"


@pytest.fixture(scope="module")
def churn_dir(tmp_path_factory):
    folder = write_churn_export(tmp_path_factory.mktemp("churn") / "data")
    write_observed_until(
        folder, END
    )  # the export was taken at END, ten quiet days after its last event
    return folder


@pytest.fixture(scope="module")
def trained(churn_dir, tmp_path_factory, mlflow_template):
    """``train churn_risk --horizon-days 30 --json`` on the export, in a fresh state folder."""
    mp = pytest.MonkeyPatch()
    state = mlflow_template(tmp_path_factory.mktemp("state"))
    mp.setenv("SALESPILOT_STATE_DIR", str(state))
    get_settings.cache_clear()
    args = ["train", "churn_risk", "--data", str(churn_dir), "--horizon-days", "30"]
    result = CliRunner().invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    yield json.loads(result.stdout)["churn_risk"], Settings(state_dir=state)
    mp.undo()
    get_settings.cache_clear()


def _active_accounts(history, t: pd.Timestamp) -> set[str]:
    """Naive reference: accounts with a subscription started before t and not ended before t."""
    s = history.subscriptions
    active = (s["started_at"] < t) & (s["ended_at"].isna() | (s["ended_at"] >= t))
    return set(s.loc[active, "account_id"])


def test_horizon_days_reaches_labels_split_run_and_version(trained):
    import mlflow

    out, settings = trained
    assert out["horizon_days"] == 30
    assert out["split"]["embargo_days"] == 30.0
    mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
    client = mlflow.MlflowClient()
    assert client.get_run(out["run_id"]).data.params["horizon_days"] == "30"
    version = client.get_model_version("churn_risk", out["version"])
    assert version.tags["horizon_days"] == "30"


def test_every_candidate_row_is_used_or_left_out_with_a_reason(trained, churn_dir):
    out, _ = trained
    acc = out["row_accounting"]
    assert acc["entity"] == "account_id"
    used = {k: v["rows"] for k, v in acc["used"].items()}
    left = {k: v["rows"] for k, v in acc["left_out"].items()}
    assert list(used) == ["train", "validation", "test"]
    assert list(left) == ["warm_up", "unlabelled_end", "embargo", "outside_periods"]
    assert sum(used.values()) + sum(left.values()) == acc["candidates"]["rows"]
    split = out["split"]
    assert used == {
        "train": split["train_rows"],
        "validation": split["valid_rows"],
        "test": split["test_rows"],
    }
    assert min(used.values()) > 0 and left["warm_up"] > 0 and left["embargo"] > 0

    # the candidates are every active account at every Monday from the first day to the end
    history = load_history(churn_dir, now=NOW)
    start = training_sets.history_start(history).normalize()
    mondays = pd.date_range(start, END, freq="W-MON")
    active = [_active_accounts(history, t) for t in mondays]
    counts = pd.Series([len(a) for a in active], index=mondays)
    assert acc["candidates"]["rows"] == counts.sum()
    grid_start = training_sets.as_of_grid(history)[0]
    assert left["warm_up"] == counts[counts.index < grid_start].sum()
    # unlabelled: the label's 30 days reach past the stated end, not past the last event
    assert left["unlabelled_end"] == counts[counts.index + pd.Timedelta(days=30) > END].sum()
    assert acc["candidates"]["entities"] == len(set().union(*active))
    for part in (*acc["used"].values(), *acc["left_out"].values()):
        assert part["entities"] <= part["rows"]


def test_the_table_shows_the_row_account_in_80_columns(trained):
    from rich.console import Console

    from salespilot.cli import model_cmds

    out, _ = trained
    console = Console(width=80, record=True)
    original = model_cmds.out
    model_cmds.out = console
    try:
        model_cmds._print_train_table({"churn_risk": out})
    finally:
        model_cmds.out = original
    text = console.export_text()
    assert "30-day horizon" in text
    total = out["row_accounting"]["candidates"]["rows"]
    lines = [line for line in text.splitlines() if line.strip().startswith(("rows:", "used:"))]
    assert f"rows: {total:,} candidates" in lines[0] and "validation" in lines[1]
    assert "left out: warm up" in text and "embargo" in text
    assert max(len(line) for line in text.splitlines()) <= 80


def test_observed_until_bounds_the_unlabelled_end(churn_dir, tmp_path):
    stated = load_history(churn_dir, now=NOW)
    last = last_event(stated)
    assert observed_end(stated) == END and last < END
    inferred = load_history(churn_dir, now=NOW, observed_until=last)
    assert observed_end(inferred) == last
    grid = training_sets.as_of_grid(stated)
    labelled = {}
    for name, history in (("stated", stated), ("inferred", inferred)):
        frame = training_sets.build_training_set(history, "accounts", grid[-8:], 30)
        labelled[name] = frame.loc[frame["label_churned"].notna(), "as_of"].max()
    assert labelled["stated"] + pd.Timedelta(days=30) <= END
    assert labelled["stated"] > labelled["inferred"]  # the quiet days are observed too
    with pytest.raises(HistoryValidationError, match="observed_until"):
        load_history(churn_dir, now=NOW, observed_until=last - pd.Timedelta(1))


def test_horizon_from_settings_and_the_command_line():
    churn = SPECS["churn_risk"]
    assert horizon_spec(churn, Settings()).horizon_days == 90
    from_settings = Settings(horizon_days={"churn_risk": 30})
    assert horizon_spec(churn, from_settings).horizon_days == 30
    assert horizon_spec(churn, from_settings, 45).horizon_days == 45
    assert horizon_spec(SPECS["contact_time"], from_settings) is SPECS["contact_time"]
    with pytest.raises(ValueError, match="no label horizon"):
        Settings(horizon_days={"contact_time": 7})
    with pytest.raises(ValueError, match="unknown model 'churn'"):
        Settings(horizon_days={"churn": 30})


def test_horizon_days_in_params_points_to_the_option(tmp_path):
    r = CliRunner().invoke(
        app, ["train", "churn_risk", "--data", str(tmp_path), "--params", "horizon_days=30"]
    )
    assert r.exit_code == 1
    assert "unknown LightGBM parameter(s) 'horizon_days'" in r.output
    assert "--horizon-days 30" in r.output
    r = CliRunner().invoke(app, ["train", "contact_time", "--horizon-days", "7"])
    assert r.exit_code == 1 and "no label horizon" in r.output


def test_the_pages_say_the_served_models_horizon():
    from salespilot.models.win_probability import SPEC, score_label

    served = SimpleNamespace(metadata={"horizon_days": 30})
    assert score_label(SPEC.horizon_of(served)) == "won within 30 days"
    assert score_label(SPEC.horizon_of(None)) == f"won within {SPEC.horizon_days} days"


def test_a_left_within_the_last_month_table_trains_with_a_30_day_horizon(trained, tmp_path):
    """A churn table taken on END: customers who left did so in the month before it. Scored
    once, at the snapshot date END - 30 days, with "churned within 30 days" as the label."""
    from salespilot.features.model_rows import FILE_NAME

    folder = write_churn_export(
        tmp_path / "snapshot", accounts=900, seed=5, quiet_days=1, snapshot=True
    )
    write_observed_until(folder, END)
    rows = {"churn_risk": {"rows": "decision", "decision_at": "snapshot"}}
    (folder / FILE_NAME).write_text(json.dumps({"version": 1, "models": rows}), encoding="utf-8")
    args = ["train", "churn_risk", "--data", str(folder), "--horizon-days", "30", "--json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)["churn_risk"]
    assert out["horizon_days"] == 30
    snapshot = END - pd.Timedelta(days=30)
    assert pd.Timestamp(out["split"]["test_start"]) == snapshot
    assert pd.Timestamp(out["split"]["test_end"]) == snapshot

    history = load_history(folder, now=NOW)
    subs = history.subscriptions
    active = (subs["started_at"] < snapshot) & (
        subs["ended_at"].isna() | (subs["ended_at"] >= snapshot)
    )
    acc = out["row_accounting"]
    assert acc["candidates"]["rows"] == acc["candidates"]["entities"] == active.sum()
    used = sum(v["rows"] for v in acc["used"].values())
    left = sum(v["rows"] for v in acc["left_out"].values())
    assert used + left == active.sum() and acc["left_out"]["warm_up"]["rows"] == 0
    churned = (active & subs["ended_at"].notna()).sum()  # every leaver left in the last month
    assert churned >= 60 and out["metrics"]["roc_auc"] is not None
