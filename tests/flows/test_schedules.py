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
