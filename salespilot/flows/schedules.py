"""Deployments with cron schedules, and the local Prefect server they need.

Schedules only fire when a Prefect server is running: ``salespilot schedule`` starts a local
one (SQLite, in the state folder) unless ``SALESPILOT_PREFECT_API_URL`` points at an
existing server, registers the deployments and serves them from this process.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx

from salespilot.settings import Settings

log = logging.getLogger(__name__)


def morning_schedules(settings: Settings, teams: Mapping[str, str]) -> list[Any]:
    """One cron schedule per time zone: 06:30 on working days in each team's own zone.

    ``teams`` maps each team to its zone (:func:`team_zones`). Teams that share a zone share a
    schedule; the schedule passes its teams as a parameter so each run scores only the reps
    whose morning it is.
    """
    return _per_zone(teams, settings.morning_cron, "morning")


def brief_schedules(settings: Settings, teams: Mapping[str, str]) -> list[Any]:
    """The weekly briefs: Monday 07:00 in each team's own zone, one schedule per zone."""
    return _per_zone(teams, settings.brief_cron, "brief")


def _per_zone(teams: Mapping[str, str], cron: str, prefix: str) -> list[Any]:
    from prefect.schedules import Cron

    by_zone: dict[str, list[str]] = defaultdict(list)
    for team in sorted(teams):
        by_zone[teams[team]].append(team)
    return [
        Cron(
            cron,
            timezone=zone,
            parameters={"teams": zone_teams},
            slug=f"{prefix}-{zone.replace('/', '-').lower()}",
        )
        for zone, zone_teams in sorted(by_zone.items())
    ]


def deployments(settings: Settings, teams: Mapping[str, str]) -> list[Any]:
    """The runner deployments of every scheduled flow."""
    from prefect.schedules import Cron

    from salespilot.flows.brief_flow import weekly_briefs
    from salespilot.flows.features_flow import build_features
    from salespilot.flows.morning import morning_lists
    from salespilot.flows.training_flow import train_models

    tz = settings.default_timezone
    return [
        build_features.to_deployment(
            "nightly", schedules=[Cron(settings.features_cron, timezone=tz)], tags=["salespilot"]
        ),
        train_models.to_deployment(
            "weekly", schedules=[Cron(settings.training_cron, timezone=tz)], tags=["salespilot"]
        ),
        morning_lists.to_deployment(
            "working-days",
            schedules=morning_schedules(settings, teams),
            tags=["salespilot"],
        ),
        weekly_briefs.to_deployment(
            "mondays", schedules=brief_schedules(settings, teams), tags=["salespilot"]
        ),
    ]


def schedule_text(deployment: Any) -> str:
    """The schedules of a runner deployment as ``cron zone`` lines joined by commas.

    A runner deployment holds ``DeploymentScheduleCreate`` objects whose ``schedule`` is the
    ``CronSchedule``; the cron and its zone live there.
    """
    parts = []
    for s in deployment.schedules:
        cron = getattr(s, "schedule", s)
        parts.append(f"{cron.cron} {cron.timezone or ''}".strip())
    return ", ".join(parts)


def team_zones(settings: Settings) -> dict[str, str]:
    """Each team of active reps in the configured history and its zone: the zone its reps'
    lists show (``rep_timezones`` by team or region, else their contacts' usual zone)."""
    from salespilot.features.loader import load_history
    from salespilot.serving.best_times import team_timezones

    return team_timezones(load_history(settings.data_dir), settings.rep_timezones)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalPrefectServer:
    """``prefect server start`` in a child process, with its SQLite database in ``home``."""

    def __init__(self, home: Path, port: int | None = None) -> None:
        self.home = Path(home)
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}/api"
        self.process: subprocess.Popen | None = None

    def start(self, timeout_s: float = 240.0) -> str:
        self.home.mkdir(parents=True, exist_ok=True)
        env = {
            **os.environ,
            "PREFECT_HOME": str(self.home.resolve()),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_UI_ENABLED": "false",
        }
        env.pop("PREFECT_API_URL", None)
        log_file = (self.home / "server.log").open("ab")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "prefect",
                "server",
                "start",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
            ],
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"the Prefect server exited at start; see {self.home / 'server.log'}"
                )
            try:
                if httpx.get(f"{self.url}/health", timeout=2).is_success:
                    return self.url
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"the Prefect server did not answer within {timeout_s:.0f} s")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()

    def __enter__(self) -> LocalPrefectServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def register(settings: Settings, api_url: str, teams: Mapping[str, str]) -> list[str]:
    """Register (apply) every deployment on the server at ``api_url``; return their ids."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: api_url}):
        return [str(d.apply()) for d in deployments(settings, teams)]


def serve_forever(settings: Settings, api_url: str, teams: Mapping[str, str]) -> None:
    """Serve the deployments from this process until interrupted (runs fire on schedule)."""
    from prefect import serve
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: api_url}):
        serve(*deployments(settings, teams))
