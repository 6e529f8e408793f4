"""Each flow end to end on a small generated history, under Prefect's test harness."""

from __future__ import annotations

import shutil

import pandas as pd
import pyarrow.parquet as pq
import pytest

from salespilot.features.store import read_feature_table


@pytest.fixture(scope="module")
def small_history_dir(tmp_path_factory):
    """A demo history of 6 reps over 12 months: the weekly grid of the suite's demo (a year),
    a third of its deals, so each feature build costs a third."""
    from salespilot.features.demo import generate_history

    out = tmp_path_factory.mktemp("small_history")
    generate_history(out, reps=6, months=12, seed=7, end=pd.Timestamp("2026-06-30"))
    return out


@pytest.fixture(scope="module")
def flow_env(tmp_path_factory, small_history_dir):
    """A private copy of the small history and a state folder, selected through the settings."""
    root = tmp_path_factory.mktemp("flows")
    data = root / "data"
    shutil.copytree(small_history_dir, data)
    mp = pytest.MonkeyPatch()
    mp.setenv("SALESPILOT_STATE_DIR", str(root / "state"))
    mp.setenv("SALESPILOT_DATA_DIR", str(data))
    yield root, data
    mp.undo()


def _part_mtimes(root) -> dict[str, float]:
    return {
        str(p.relative_to(root)): p.stat().st_mtime_ns
        for p in (root / "state").rglob("_parts/*/*.parquet")
    }


def test_build_features_caches_an_unchanged_history_and_rebuilds_a_changed_one(flow_env):
    from salespilot.flows.features_flow import build_features

    root, data = flow_env
    first = build_features()
    assert set(first["tables"]) == {"deals", "accounts", "attempts"}
    assert all(info["rows"] > 0 for info in first["tables"].values())
    deals, meta = read_feature_table(root / "state" / "features", "deals")
    assert meta["history_hash"] == first["history_hash"]
    assert deals["as_of"].nunique() > 40  # a weekly grid over a year
    built = _part_mtimes(root)

    second = build_features()
    assert second["history_hash"] == first["history_hash"]
    assert _part_mtimes(root) == built, "an unchanged history must not be rebuilt"

    # one more lost deal: a different history, so everything is rebuilt under its new hash
    opps = pd.read_csv(data / "opportunities.csv")
    row = opps[opps["status"] == "lost"].iloc[[0]].copy()
    row["opportunity_id"] = "O-NEW-1"
    pd.concat([opps, row]).to_csv(data / "opportunities.csv", index=False)
    third = build_features()
    assert third["history_hash"] != first["history_hash"]
    _, meta3 = read_feature_table(root / "state" / "features", "deals")
    assert meta3["history_hash"] == third["history_hash"]
    assert len(_part_mtimes(root)) > len(built)

    # the state folder removed (rm -rf .salespilot): the cache still knows the parts, but
    # their files are gone - they are built again instead of failing on a missing file
    shutil.rmtree(root / "state")
    fourth = build_features()
    assert fourth["history_hash"] == third["history_hash"]
    assert all(info["rows"] > 0 for info in fourth["tables"].values())
    assert _part_mtimes(root)
    _, meta4 = read_feature_table(root / "state" / "features", "deals")
    assert meta4["history_hash"] == third["history_hash"]


def test_dask_runner_builds_the_same_tables_as_the_local_one(
    tmp_path, small_history_dir, monkeypatch
):
    from salespilot.flows.features_flow import build_features

    frames = {}
    # the local runner builds the whole history at once, the cluster two groups of accounts
    for runner, groups in (("thread", 1), ("dask", 2)):
        monkeypatch.setenv("SALESPILOT_TASK_RUNNER", runner)
        monkeypatch.setenv("SALESPILOT_STATE_DIR", str(tmp_path / runner))
        out = tmp_path / runner / "features"
        build_features(data_dir=str(small_history_dir), tables=["deals"], account_groups=groups)
        frames[runner] = read_feature_table(out, "deals")[0]
        assert len(list((out / "_parts").rglob("deals-*.parquet"))) == groups
    assert len(frames["thread"]) > 100 and frames["thread"]["as_of"].nunique() > 40
    pd.testing.assert_frame_equal(frames["thread"], frames["dask"])


def test_tables_built_by_account_group_are_those_of_one_big_build(
    tmp_path, small_history_dir, monkeypatch
):
    """Row for row, value for value and in the same order: the groups' parts put together
    are ``build_training_set`` on the whole history (the CLI's build)."""
    from salespilot.features.loader import load_history
    from salespilot.features.training_sets import as_of_grid, build_training_set
    from salespilot.flows.features_flow import build_features
    from salespilot.settings import Settings
    from salespilot.training.runs import feature_table_plans

    monkeypatch.setenv("SALESPILOT_STATE_DIR", str(tmp_path / "state"))
    summary = build_features(data_dir=str(small_history_dir), account_groups=3)
    out = tmp_path / "state" / "features"
    assert len(list((out / "_parts").rglob("*-of-003.parquet"))) == 3 * 3
    history = load_history(small_history_dir)
    grid = as_of_grid(history)
    for plan in feature_table_plans(history, Settings(), None):
        frame, meta = read_feature_table(out, plan.table)
        whole = build_training_set(history, plan.table, grid, plan.horizon_days)
        assert meta["rows"] == summary["tables"][plan.table]["rows"] == len(whole) > 100
        pd.testing.assert_frame_equal(frame, whole, obj=plan.table)
        # appended batch by batch (one as_of of every part at a time), never held whole
        if plan.table != "attempts":
            batches = pq.ParquetFile(out / f"{plan.table}.parquet").metadata.num_row_groups
            assert batches == whole["as_of"].nunique() > 1


@pytest.mark.parametrize(
    ("runner", "workers", "activities", "groups"),
    [
        ("thread", 2, 1_300_000, 1),  # the demo's history: one process holds it whole
        ("thread", 2, 25_000_000, 3),
        ("dask", 2, 1_300_000, 2),  # a group per worker
        ("dask", 4, 50_000_000, 17),
    ],
)
def test_the_default_number_of_account_groups(runner, workers, activities, groups):
    from salespilot.flows.features_flow import _default_groups
    from salespilot.settings import Settings

    settings = Settings(task_runner=runner, dask_workers=workers)
    assert _default_groups(activities, settings) == groups


def test_backtest_targets_flow_logs_its_comparison_to_mlflow(
    tmp_path, demo_history_dir, monkeypatch, mlflow_template
):
    import mlflow

    from salespilot.flows.backtest import backtest_targets
    from salespilot.settings import Settings

    monkeypatch.setenv("SALESPILOT_STATE_DIR", str(mlflow_template(tmp_path / "state")))
    monkeypatch.setenv("SALESPILOT_TARGETS_SIMULATIONS", "500")
    out = backtest_targets(data_dir=str(demo_history_dir), periods=2, p_win="empirical")
    assert len(out["periods"]) == 2
    for method in ("salespilot", "last_year_plus_20", "even_split"):
        assert {"coverage", "mape", "attainment_spread"} <= set(out[method])
    run = mlflow.MlflowClient(Settings().mlflow_tracking_uri).get_run(out["mlflow_run_id"])
    assert run.data.metrics["salespilot_mape"] == pytest.approx(out["salespilot"]["mape"])
