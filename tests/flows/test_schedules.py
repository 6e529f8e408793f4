"""`salespilot schedule` against a real Prefect server started for the test."""

from __future__ import annotations

import asyncio

from salespilot.flows import schedules
from salespilot.settings import Settings


def test_each_teams_lists_go_out_at_0630_in_its_reps_zone(tmp_path, monkeypatch):
    """One zone setting: the rep's zone the lists show is the zone that times the team's
    morning (New York's lists at 06:30 New York, not 01:30 while London wakes)."""
    from salespilot.serving.best_times import rep_timezones, team_timezones
    from tests.features.factories import make_history

    monkeypatch.setenv("SALESPILOT_STATE_DIR", str(tmp_path))
    h = make_history(
        reps=[
            {"rep_id": "R1", "team": "East", "region": "North America"},
            {"rep_id": "R2", "team": "East", "region": "North America"},
            {"rep_id": "R3", "team": "West", "region": "EMEA"},
            {"rep_id": "R4", "team": "Nordics", "region": "EMEA"},
            {"rep_id": "R5", "team": "Pacific", "region": "Oceania"},
            {"rep_id": "R6", "team": "Gone", "region": "EMEA", "left_at": "2023-06-01"},
        ],
        accounts=[{"account_id": "A1", "owner_rep_id": "R5"}],
        contacts=[{"contact_id": "C1", "account_id": "A1", "timezone": "Australia/Sydney"}],
    )
    settings = Settings(rep_timezones={**Settings().rep_timezones, "Nordics": "Europe/Oslo"})
    zones = team_timezones(h, settings.rep_timezones)
    assert zones == {
        "East": "America/New_York",  # the region's zone
        "Nordics": "Europe/Oslo",  # a team entry wins over the region
        "Pacific": "Australia/Sydney",  # unmapped: the zone of the customers they call
        "West": "Europe/Paris",
    }
    assert rep_timezones(h, settings.rep_timezones)["R4"] == "Europe/Oslo"  # what the list shows
    found = schedules.morning_schedules(settings, zones)
    by_zone = {s.timezone: s.parameters["teams"] for s in found}
    assert by_zone == {
        "America/New_York": ["East"],
        "Australia/Sydney": ["Pacific"],
        "Europe/Oslo": ["Nordics"],
        "Europe/Paris": ["West"],
    }
    assert {s.cron for s in found} == {"30 6 * * 1-5"}


def test_the_old_team_zone_setting_says_where_it_went(tmp_path, monkeypatch):
    import pytest
    from pydantic import ValidationError

    monkeypatch.setenv("SALESPILOT_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("SALESPILOT_TEAM_TIMEZONES", '{"East": "America/New_York"}')
    with pytest.raises(ValidationError, match="SALESPILOT_REP_TIMEZONES"):
        Settings()


def test_deployments_and_schedules_are_registered_on_a_real_server(tmp_path, settings):
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    teams = {"East": "America/New_York", "West": "Europe/London"}
    with schedules.LocalPrefectServer(tmp_path / "prefect") as server:
        ids = schedules.register(settings, server.url, teams)
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
    # the demo's teams are in North America, EMEA and APAC: each morning in its own zone
    assert (
        "morning_lists/working-days: 30 6 * * 1-5 America/New_York, 30 6 * * 1-5 Asia/Singapore,"
        " 30 6 * * 1-5 Europe/Paris" in result.output
    )
    assert "weekly_briefs/mondays: 0 7 * * 1 America/New_York" in result.output
