"""Training sets on a grid, Parquet round trips with metadata, and the ``features`` command."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pandas as pd
import pytest
from typer.testing import CliRunner

from salespilot.cli import app
from salespilot.features.deals import deal_snapshot
from salespilot.features.loader import load_history
from salespilot.features.pit import data_as_of
from salespilot.features.store import latest_snapshot, read_feature_table, write_feature_tables
from salespilot.features.training_sets import FEATURE_SET_VERSION, as_of_grid, build_training_set
from tests.features.factories import T0, random_history


def test_chunked_training_set_equals_one_pass_and_keeps_categories():
    h = random_history(5)
    grid = pd.date_range(T0 + pd.Timedelta(days=7), periods=6, freq="7D")
    calls = []
    chunked = build_training_set(
        h, "deals", grid, 30, chunk_size=2, progress=lambda d, n: calls.append((d, n))
    )
    assert calls == [(2, 6), (4, 6), (6, 6)]
    whole = deal_snapshot(h, grid)
    assert len(chunked) == len(whole)
    assert isinstance(chunked["stage"].dtype, pd.CategoricalDtype)
    assert {"label_won", "label_outcome_won", "label_closed"} <= set(chunked.columns)
    pd.testing.assert_frame_equal(
        chunked.drop(columns=["label_won", "label_outcome_won", "label_closed"]).astype(
            {c: object for c in ("stage", "product_line", "lead_source")}
        ),
        whole.astype({c: object for c in ("stage", "product_line", "lead_source")}),
    )


def test_grid_defaults_and_unknown_table():
    h = random_history(5)
    grid = as_of_grid(h, warmup_days=0)
    assert (grid.dayofweek == 0).all() and grid.min() >= h.opportunities[
        "created_at"
    ].min().normalize()
    with pytest.raises(ValueError, match="unknown table"):
        build_training_set(h, "nope", grid)


def test_parquet_round_trip_with_metadata(tmp_path):
    h = random_history(5)
    grid = pd.date_range(T0 + pd.Timedelta(days=7), periods=3, freq="7D")
    deals = build_training_set(h, "deals", grid, 30)
    built = datetime(2026, 1, 1, tzinfo=UTC)
    write_feature_tables(
        {"deals": deals}, tmp_path, history_hash=h.content_hash(), built_at=built, horizon_days=30
    )
    back, meta = read_feature_table(tmp_path, "deals")
    pd.testing.assert_frame_equal(back, deals)
    assert meta["feature_set_version"] == FEATURE_SET_VERSION
    assert meta["history_hash"] == h.content_hash() and meta["horizon_days"] == 30
    assert meta["as_of_min"] == deals["as_of"].min().isoformat()
    assert meta["as_of_count"] == deals["as_of"].nunique()
    assert meta["label_columns"] == ["label_won", "label_outcome_won", "label_closed"]
    assert json.loads((tmp_path / "deals.json").read_text()) == meta
    latest, _ = latest_snapshot(tmp_path, "deals")
    assert (latest["as_of"] == grid[-1]).all() and not any(c.startswith("label_") for c in latest)
    with pytest.raises(FileNotFoundError, match="salespilot features"):
        read_feature_table(tmp_path, "accounts")


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory):
    from salespilot.features.demo import generate_history

    out = tmp_path_factory.mktemp("demo_small")
    generate_history(out, reps=4, months=4, seed=3, end=pd.Timestamp("2026-03-02"))
    return out


def test_cli_builds_every_table_and_the_snapshots(demo_dir, tmp_path):
    out = tmp_path / "features"
    result = CliRunner().invoke(
        app, ["features", "--data", str(demo_dir), "--out", str(out), "--json"]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert set(summary["tables"]) == {
        "deals",
        "accounts",
        "attempts",
        "snapshots/deals",
        "snapshots/accounts",
    }
    now_of_data = data_as_of(load_history(demo_dir))  # the instant the API scores too
    assert summary["snapshot_as_of"] == str(now_of_data)
    deals, meta = read_feature_table(out, "deals")
    assert len(deals) == summary["tables"]["deals"]["rows"] > 0
    assert meta["history_hash"] == summary["history_hash"]
    # labelled with each model's own horizon, as the build_features flow does: train reuses them
    from salespilot.models import SPECS
    from salespilot.training.runs import stored_frame

    assert meta["horizon_days"] == SPECS["win_probability"].horizon_days
    assert (
        read_feature_table(out, "accounts")[1]["horizon_days"] == SPECS["churn_risk"].horizon_days
    )
    assert stored_frame("deals", out, summary["history_hash"], 60) is not None
    now, _ = latest_snapshot(out, "deals")
    assert (now["as_of"] == now_of_data).all()

    one = CliRunner().invoke(
        app,
        [
            "features",
            "--data",
            str(demo_dir),
            "--out",
            str(tmp_path / "one"),
            "--as-of",
            "2026-02-01",
            "--json",
        ],
    )
    assert one.exit_code == 0, one.output
    assert set(json.loads(one.stdout)["tables"]) == {"snapshots/deals", "snapshots/accounts"}


def test_cli_errors_are_one_clear_line(tmp_path):
    result = CliRunner().invoke(app, ["features", "--data", str(tmp_path / "missing")])
    assert result.exit_code == 1
    assert "does not exist" in " ".join(result.output.split())
    assert "Traceback" not in result.output
    bad = CliRunner().invoke(
        app, ["features", "--data", str(tmp_path), "--tables", "deals,bogus", "--json"]
    )
    assert bad.exit_code == 1 and "bogus" in json.loads(bad.stdout)["error"]
