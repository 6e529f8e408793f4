"""kill -9 during a features build (or a morning run): the folder says it is inconsistent,
naming the file and both histories, instead of holding two histories side by side unmarked."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from salespilot.atomic import leftovers
from salespilot.features.store import (
    FeatureFolderError,
    check_feature_folder,
    latest_snapshot,
    read_feature_table,
    write_feature_tables,
)
from salespilot.flows.morning import check_lists, lists_dir, seal_lists, write_list
from salespilot.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def _table(n: int, value: float) -> pd.DataFrame:
    as_of = pd.Timestamp("2026-06-01") + pd.to_timedelta(range(n), unit="D")
    return pd.DataFrame({"opportunity_id": [f"O{i}" for i in range(n)], "as_of": as_of,
                         "days_since_last_touch": [value] * n})  # fmt: skip


# A second build, of history B, killed by SIGKILL the way an interrupted run stops: the deals
# table and one list already rewritten, the accounts table half-way through its write, no
# manifest yet (the flow writes its tables one by one and seals them last).
KILLED_BUILD = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    import pandas as pd
    from salespilot.atomic import replacing
    from salespilot.features.store import write_feature_tables
    from salespilot.flows.morning import write_list
    from salespilot.settings import Settings
    from tests.features.test_interrupted_build import _table

    features, state = Path(sys.argv[1]), Path(sys.argv[2])
    write_feature_tables({"deals": _table(5, 2.0)}, features, history_hash="b" * 16,
                         horizon_days=60, manifest=False)
    write_list.fn(Settings(state_dir=state), "R2", {"rep_id": "R2", "items": ["B"]}, "2026-06-30")
    with replacing(features / "accounts.parquet") as tmp:
        tmp.write_bytes(b"PAR1 half a table")
        os.kill(os.getpid(), signal.SIGKILL)
    """
)


@pytest.fixture(scope="module")
def interrupted(tmp_path_factory):
    root = tmp_path_factory.mktemp("interrupted-build")
    features, settings = root / "features", Settings(state_dir=root / "state")
    write_feature_tables(
        {"deals": _table(3, 1.0), "accounts": _table(4, 1.0), "snapshots/deals": _table(2, 1.0)},
        features,
        history_hash="a" * 16,
        extras={"deals": {"horizon_days": 60}},
    )
    for rep in ("R1", "R2"):
        write_list.fn(settings, rep, {"rep_id": rep, "items": ["A"]}, "2026-06-30")
    seal_lists.fn(settings, "2026-06-30", "a" * 16, ["R1", "R2"])
    assert (
        check_feature_folder(features) == [] and check_lists(root / "state/lists/2026-06-30") == []
    )
    done = subprocess.run(
        [sys.executable, "-c", KILLED_BUILD, str(features), str(root / "state")],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == -signal.SIGKILL, done.stderr[-2000:]
    return features, settings


def test_the_table_of_the_unfinished_build_is_refused_by_name_and_hash(interrupted):
    features, _ = interrupted
    with pytest.raises(FeatureFolderError) as err:
        read_feature_table(features, "deals")
    message = str(err.value)
    assert "deals.parquet holds history bbbbbbbbbbbb" in message
    assert "manifest.json names history aaaaaaaaaaaa" in message
    assert "salespilot features" in message
    assert check_feature_folder(features) == [message]


def test_a_table_cut_by_the_kill_is_left_as_it_was(interrupted):
    features, _ = interrupted
    accounts, meta = read_feature_table(features, "accounts")  # the old one, whole
    assert len(accounts) == 4 and meta["history_hash"] == "a" * 16
    assert [p.name.split(".")[1] for p in leftovers(features)] == ["accounts"]
    snap, _ = latest_snapshot(features, "deals")  # untouched by the second build
    assert len(snap) == 2


def test_the_next_build_makes_the_folder_consistent_again(interrupted, tmp_path):
    features, _ = interrupted
    copy = tmp_path / "features"
    copy.mkdir()
    for p in features.rglob("*"):
        if p.is_file():
            (copy / p.relative_to(features)).parent.mkdir(parents=True, exist_ok=True)
            (copy / p.relative_to(features)).write_bytes(p.read_bytes())
    write_feature_tables({"deals": _table(5, 2.0)}, copy, history_hash="b" * 16,
                         extras={"deals": {"horizon_days": 60}})  # fmt: skip
    assert check_feature_folder(copy) == []
    manifest = json.loads((copy / "manifest.json").read_text())
    assert manifest["history_hash"] == "b" * 16
    # the tables this build did not touch keep their own history, named in the manifest
    assert manifest["tables"]["accounts"]["history_hash"] == "a" * 16
    assert manifest["tables"]["deals"]["history_hash"] == "b" * 16


def test_a_list_of_the_unfinished_run_is_named(interrupted):
    _, settings = interrupted
    day = lists_dir(settings) / "2026-06-30"
    problems = check_lists(day)
    assert len(problems) == 1
    assert "R2.json is not the list manifest.json names (data aaaaaaaaaaaa)" in problems[0]
    assert json.loads((day / "R1.json").read_text())["items"] == ["A"]


def test_a_folder_without_a_manifest_says_so(tmp_path):
    write_feature_tables({"deals": _table(3, 1.0)}, tmp_path, history_hash="c" * 16,
                         manifest=False)  # fmt: skip
    with pytest.raises(FeatureFolderError, match=r"deals\.parquet but no manifest\.json"):
        read_feature_table(tmp_path, "deals")
