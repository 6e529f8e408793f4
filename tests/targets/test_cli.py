"""CLI: targets / health / backtest-targets print one JSON object; user errors exit 1."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from salespilot.cli import app
from tests.terminal import assert_readable_at_80


@pytest.fixture
def cli(tmp_path, monkeypatch):
    from salespilot.settings import get_settings

    monkeypatch.setenv("SALESPILOT_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("SALESPILOT_TARGETS_SIMULATIONS", "500")
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()


def _json(result) -> dict:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_targets_json_by_rep_with_company_target(cli, demo_history_dir):
    out = _json(
        cli.invoke(
            app,
            [
                "targets",
                "--period",
                "2026-Q3",
                "--by",
                "rep",
                "--company-target",
                "1000000",
                "--data",
                str(demo_history_dir),
                "--json",
            ],
        )
    )
    assert out["period"] == "2026-Q3" and out["by"] == "rep"
    assert out["p_win_source"] == "empirical"  # no registry in this state folder
    assert sum(u["allocated"] for u in out["units"]) == pytest.approx(1_000_000, abs=1)
    u = out["units"][0]
    assert {"p10", "p50", "p90", "mean", "base", "stretch", "activity_plan"} <= set(u)
    assert {"leads_per_week", "demos_per_month"} <= set(u["activity_plan"])


def test_targets_table_plots_and_user_errors(cli, demo_history_dir, tmp_path):
    r = cli.invoke(
        app,
        ["targets", "--period", "2026-Q3", "--by", "region", "--data", str(demo_history_dir),
         "--plot", str(tmp_path / "plots")],
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "2026-Q3 targets by region" in r.stdout
    pngs = sorted((tmp_path / "plots").glob("region-*.png"))
    assert pngs and all(p.stat().st_size > 1000 for p in pngs)
    r = cli.invoke(app, ["targets", "--period", "2026-13", "--data", str(demo_history_dir)])
    assert r.exit_code == 1 and "2026-Q1" in r.output and "Traceback" not in r.output
    r = cli.invoke(app, ["targets", "--period", "2026-Q3", "--by", "galaxy", "--json",
                         "--data", str(demo_history_dir)])  # fmt: skip
    assert r.exit_code == 1 and "error" in json.loads(r.stdout)
    r = cli.invoke(app, ["targets", "--period", "2026-Q3", "--data", "/nonexistent/folder"])
    assert r.exit_code == 1 and "does not exist" in r.output


def test_targets_and_health_tables_read_at_80_columns(
    cli, targets_demo_history, demo_history_dir, monkeypatch
):
    monkeypatch.setenv("COLUMNS", "80")
    args = ["--period", "2026-Q3", "--by", "rep", "--data", str(demo_history_dir)]
    out = _json(cli.invoke(app, ["targets", *args, "--company-target", "1000000", "--json"]))
    r = cli.invoke(app, ["targets", *args, "--company-target", "1000000"])
    assert r.exit_code == 0, r.output
    ids = tuple(u["unit"].split()[0] for u in out["units"])
    assert_readable_at_80(r.stdout, (*ids, "stretch", "demo/mo", "P(≥)"))
    team = sorted(targets_demo_history.reps["team"].unique())[0]
    r = cli.invoke(app, ["health", team, "--data", str(demo_history_dir)])
    assert r.exit_code == 0, r.output
    reps = targets_demo_history.reps
    members = tuple(reps.loc[reps["team"] == team, "rep_id"])
    assert_readable_at_80(r.stdout, (*members, "lead->meeting"))


def test_health_json_and_unknown_team(cli, targets_demo_history, demo_history_dir):
    team = sorted(targets_demo_history.reps["team"].unique())[0]
    out = _json(cli.invoke(app, ["health", team, "--data", str(demo_history_dir), "--json"]))
    assert out["team"] == team and len(out["weeks"]) == 8
    assert {"flagged_reps", "alerts", "reps", "team_weeks", "thresholds"} <= set(out)
    r = cli.invoke(app, ["health", "Atlantis", "--data", str(demo_history_dir)])
    assert r.exit_code == 1 and "unknown team" in r.output
    r = cli.invoke(app, ["health", team.lower(), "--data", str(demo_history_dir)])
    assert r.exit_code == 1 and f"did you mean {team!r}?" in r.output


def test_backtest_targets_json_keys(cli, demo_history_dir):
    out = _json(
        cli.invoke(
            app,
            [
                "backtest-targets",
                "--data",
                str(demo_history_dir),
                "--periods",
                "2",
                "--json",
                "--no-mlflow",
                "--p-win",
                "empirical",
            ],
        )
    )
    for method in ("salespilot", "last_year_plus_20", "even_split"):
        assert {"coverage", "mape", "attainment_spread", "periods"} <= set(out[method])
    assert out["periods"] == ["2026-Q1", "2026-Q2"]
