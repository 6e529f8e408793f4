"""`salespilot schedule` against a real Prefect server started for the test."""

from __future__ import annotations

import asyncio

from salespilot.flows import schedules
from salespilot.settings import Settings


def test_morning_schedules_follow_each_teams_time_zone():
    settings = Settings(
        team_timezones={"East": "America/New_York", "APAC": "Asia/Singapore"},
        default_timezone="Europe/London",
    )
    found = schedules.morning_schedules(settings, ["East", "West", "APAC", "North"])
    by_zone = {s.timezone: s.parameters["teams"] for s in found}
    assert by_zone == {
        "America/New_York": ["East"],
        "Asia/Singapore": ["APAC"],
        "Europe/London": ["North", "West"],
    }
    assert {s.cron for s in found} == {"30 6 * * 1-5"}


def test_deployments_and_schedules_are_registered_on_a_real_server(tmp_path, settings):
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    settings = settings.model_copy(update={"team_timezones": {"East": "America/New_York"}})
    with schedules.LocalPrefectServer(tmp_path / "prefect") as server:
        ids = schedules.register(settings, server.url, ["East", "West"])
        assert len(ids) == 4

        async def read():
            async with get_client() as client:
                return await client.read_deployments()

        with temporary_settings(updates={PREFECT_API_URL: server.url}):
            deployments = asyncio.run(read())
    got = {
        d.name: sorted((s.schedule.cron, s.schedule.timezone) for s in d.schedules)
        for d in deployments
    }
    assert got == {
        "nightly": [("0 2 * * *", "Europe/London")],
        "weekly": [("0 3 * * 0", "Europe/London")],
        "working-days": [
            ("30 6 * * 1-5", "America/New_York"),
            ("30 6 * * 1-5", "Europe/London"),
        ],
        "mondays": [("0 7 * * 1", "America/New_York"), ("0 7 * * 1", "Europe/London")],
    }


def test_schedule_command_registers_and_prints_on_the_test_server(demo_history_dir, monkeypatch):
    """`salespilot schedule --register-only` against the suite's Prefect server (it once crashed
    on ``DeploymentScheduleCreate`` having no ``cron``)."""
    from prefect.settings import PREFECT_API_URL
    from typer.testing import CliRunner

    from salespilot.cli import app
    from salespilot.settings import get_settings

    monkeypatch.setenv("SALESPILOT_PREFECT_API_URL", PREFECT_API_URL.value())
    monkeypatch.setenv("SALESPILOT_DATA_DIR", str(demo_history_dir))
    monkeypatch.setenv("COLUMNS", "120")
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["schedule", "--register-only"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert "4 deployments registered." in result.output
    assert "build_features/nightly: 0 2 * * * Europe/London" in result.output
    assert "train_models/weekly: 0 3 * * 0 Europe/London" in result.output
    assert "morning_lists/working-days: 30 6 * * 1-5 Europe/London" in result.output
    assert "weekly_briefs/mondays: 0 7 * * 1 Europe/London" in result.output
