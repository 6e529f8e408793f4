"""``salespilot validate`` on a generated demo folder, and on broken variants of it."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from salespilot.cli import app
from salespilot.features.history import History
from salespilot.features.loader import summarize_history
from salespilot.features.schema import MODEL_TABLES, TABLES

runner = CliRunner()
NOW = "2026-07-01"


def test_demo_history_loads_with_every_table(demo_history: History):
    assert demo_history.present_tables == list(TABLES)
    s = summarize_history(demo_history)
    assert s["models_available"] == list(MODEL_TABLES)
    opps = demo_history.opportunities
    assert s["deals"]["won"] == (opps["status"] == "won").sum() > 0
    assert s["tables"]["activities"]["rows"] == len(demo_history.activities) > 1000
    assert s["date_range"]["end"] <= "2026-06-30T00:00:00"
    assert 0 < s["active_subscriptions"] <= len(demo_history.subscriptions)


def test_validate_generated_folder_exits_0(demo_history_dir: Path):
    result = runner.invoke(app, ["validate", str(demo_history_dir), "--now", NOW])
    assert result.exit_code == 0, result.output
    assert "valid history" in result.output
    ok = runner.invoke(app, ["validate", str(demo_history_dir), "--now", NOW, "--json"])
    assert json.loads(ok.stdout)["valid"] is True


def _rewrite(folder: Path, table: str, change: Callable[[pd.DataFrame], pd.DataFrame]) -> None:
    path = folder / f"{table}.csv"
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    change(df).to_csv(path, index=False)


def _set(column: str, value: str, row: int = 0) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def change(df: pd.DataFrame) -> pd.DataFrame:
        df.loc[row, column] = value
        return df

    return change


def _first_won_without_date(df: pd.DataFrame) -> pd.DataFrame:
    df.loc[df.index[df["status"] == "won"][0], "closed_at"] = ""
    return df


BROKEN = {
    "misspelt column": (
        "activities",
        lambda df: df.rename(columns={"channel": "chanel"}),
        "channel",
        "missing_column",
    ),
    "unknown account": (
        "opportunities",
        _set("account_id", "A9999999"),
        "account_id",
        "unknown_reference",
    ),
    "future activity": (
        "activities",
        _set("occurred_at", "2027-01-01T09:00:00Z"),
        "occurred_at",
        "future_timestamp",
    ),
    "won without date": (
        "opportunities",
        _first_won_without_date,
        "closed_at",
        "closed_without_date",
    ),
    "bad time zone": ("contacts", _set("timezone", "Paris"), "timezone", "bad_timezone"),
    "bad enum": ("activities", _set("direction", "outgoing", row=5), "direction", "not_allowed"),
    "negative amount": ("opportunities", _set("amount", "-100", row=3), "amount", "negative"),
    "duplicate rep": ("reps", lambda df: pd.concat([df, df.iloc[[0]]]), "rep_id", "duplicate_key"),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_validate_broken_variant_exits_1(demo_history_dir: Path, tmp_path: Path, case: str):
    folder = tmp_path / "broken"
    shutil.copytree(demo_history_dir, folder, ignore=shutil.ignore_patterns("truth"))
    table, change, column, rule = BROKEN[case]
    _rewrite(folder, table, change)
    text = runner.invoke(app, ["validate", str(folder), "--now", NOW])
    assert text.exit_code == 1
    assert "1 problem" in text.output and f"{table}.csv, column {column} [{rule}]" in text.output
    assert f"{table}.csv" in text.output and column in text.output and rule in text.output


def test_validate_without_a_required_table_exits_1(demo_history_dir: Path, tmp_path: Path):
    folder = tmp_path / "no-accounts"
    shutil.copytree(demo_history_dir, folder, ignore=shutil.ignore_patterns("truth", "accounts.*"))
    result = runner.invoke(app, ["validate", str(folder), "--now", NOW])
    assert result.exit_code == 1
    assert "accounts.csv" in result.output and "missing_table" in result.output
