"""Account groups: the rows built group by group are the rows of the whole history's build."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from salespilot.features.partitions import (
    account_groups,
    cross_account_figures,
    history_slice,
)
from salespilot.features.training_sets import ENTITY_COLUMNS, as_of_grid, build_training_set


@pytest.fixture(scope="module")
def small_history(tmp_path_factory):
    from salespilot.features.demo import generate_history
    from salespilot.features.loader import load_history

    out = tmp_path_factory.mktemp("partitions_history")
    generate_history(out, reps=6, months=8, seed=11, end=pd.Timestamp("2026-06-30"))
    return load_history(out, now="2026-07-01")


def _by_groups(history, table, grid, n_groups):
    groups = account_groups(history, n_groups)
    cross = cross_account_figures(history, grid)
    parts = []
    for g in range(n_groups):
        piece, _ = history_slice(history, groups == g, cross)
        ids = history.accounts["account_id"][groups == g]
        parts.append(build_training_set(piece, table, grid, 60, account_ids=ids))
    return parts


def _sorted(frame: pd.DataFrame, table: str) -> pd.DataFrame:
    key = [ENTITY_COLUMNS[table], "as_of"]
    return frame.sort_values(key, kind="stable").reset_index(drop=True)


@pytest.mark.parametrize("table", ["deals", "accounts", "attempts"])
def test_rows_built_by_account_group_are_the_whole_build(small_history, table):
    grid = as_of_grid(small_history)
    whole = build_training_set(small_history, table, grid, 60)
    parts = _by_groups(small_history, table, grid, 3)
    assert all(len(p) for p in parts), "every group holds rows"
    assert sum(len(p) for p in parts) == len(whole) > 100
    together = pd.concat(parts, ignore_index=True)
    pd.testing.assert_frame_equal(_sorted(together, table), _sorted(whole, table))


def test_a_slice_holds_only_its_accounts_activities(small_history):
    groups = account_groups(small_history, 4)
    assert set(np.unique(groups)) == {0, 1, 2, 3}
    piece, rows = history_slice(small_history, groups == 2)
    acts = small_history.activities
    assert 0 < len(piece.activities) < len(acts) / 2
    mine = set(small_history.accounts["account_id"][groups == 2])
    assert set(piece.activities["account_id"]) <= mine
    assert (acts["activity_id"].to_numpy()[rows] == piece.activities["activity_id"]).all()
    assert len(piece.opportunities) == len(small_history.opportunities)  # rep records cross
    assert piece.observed_until == small_history.activities["occurred_at"].max()


def test_an_activity_on_another_accounts_deal_ties_both_accounts_in_one_group(small_history):
    acts = small_history.activities.copy()
    opps = small_history.opportunities.set_index("opportunity_id")["account_id"]
    groups = account_groups(small_history, 5)
    group_of = dict(zip(small_history.accounts["account_id"], groups, strict=True))
    # an activity logged on one account but on a deal of an account of another group
    on_deal = acts.index[acts["opportunity_id"].notna()]
    i = next(
        i
        for i in on_deal
        if any(group_of[a] != group_of[opps[acts.at[i, "opportunity_id"]]] for a in group_of)
    )
    deal_account = opps[acts.at[i, "opportunity_id"]]
    other = next(a for a, g in group_of.items() if g != group_of[deal_account])
    acts.loc[i, "account_id"] = other
    history = dataclasses.replace(small_history, activities=acts)
    tied = account_groups(history, 5)
    ids = list(history.accounts["account_id"])
    assert tied[ids.index(other)] == tied[ids.index(deal_account)]
    grid = as_of_grid(history)
    for table in ("deals", "accounts"):
        whole = build_training_set(history, table, grid, 60)
        together = pd.concat(_by_groups(history, table, grid, 5), ignore_index=True)
        pd.testing.assert_frame_equal(_sorted(together, table), _sorted(whole, table))


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_a_folder_cut_batch_by_batch_gives_each_group_the_slice_of_the_whole(
    small_history, tmp_path, monkeypatch, fmt
):
    """Read in batches, never whole: the same hash, groups, cross-account figures and, per
    group, the same activities, subscriptions and population rates as the loaded history."""
    from salespilot.features import group_inputs

    folder = small_history.source
    if fmt == "parquet":
        folder = tmp_path / "parquet"
        folder.mkdir()
        for name in small_history.present_tables:
            small_history.table(name).to_parquet(folder / f"{name}.parquet", index=False)
    monkeypatch.setattr(group_inputs, "BATCH_ROWS", 2_000)  # several batches per table
    monkeypatch.setattr(group_inputs, "QUERY_ROWS", 1_000)
    scan = group_inputs.scan(folder, 3)
    assert scan.rows["activities"] == len(small_history.activities) > 3 * 2_000
    assert scan.history_hash == small_history.content_hash()
    groups = account_groups(small_history, 3)
    assert (scan.groups == groups).all()
    grid = as_of_grid(small_history)
    assert (as_of_grid(scan.small) == grid).all()
    folders = group_inputs.write_groups(scan, tmp_path / "groups")
    cross = group_inputs.cross_account(scan, grid, folders)
    whole = cross_account_figures(small_history, grid)
    pd.testing.assert_frame_equal(cross.calls_before, whole.calls_before)
    assert cross.first_activity_ns == whole.first_activity_ns
    for g, f in enumerate(folders):
        piece, rows = group_inputs.load_group(f, cross, scan.observed_until)
        expected, expected_rows = history_slice(small_history, groups == g, whole)
        assert (rows == expected_rows).all() and len(rows)
        assert piece.observed_until == expected.observed_until
        for name in ("activities", "subscriptions"):
            pd.testing.assert_frame_equal(piece.table(name), expected.table(name), obj=name)
        pd.testing.assert_frame_equal(
            piece.cross_account.attempt_population.sort_index(),
            expected.cross_account.attempt_population.sort_index(),
        )
