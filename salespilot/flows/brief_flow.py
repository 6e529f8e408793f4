"""``weekly_briefs``: each team's weekly brief on Monday morning, stored, pushed through the
morning lists' outbox and logged to MLflow as an artifact."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NONE as NO_CACHE

from salespilot.atomic import write_json
from salespilot.flows.features_flow import load_and_validate
from salespilot.flows.morning import send_pending
from salespilot.flows.outbox import Outbox
from salespilot.settings import Settings


def briefs_dir(settings: Settings) -> Path:
    return settings.state_dir / "briefs"


@task(cache_policy=NO_CACHE)
def build_brief(history, team: str, settings: Settings) -> dict:
    """One team's brief, with the knobs of the settings (the ``brief`` command's twin)."""
    from salespilot.targets.brief import weekly_brief
    from salespilot.targets.service import champion_scorer, configs_from_settings

    fc, _, th = configs_from_settings(settings)
    return weekly_brief(
        history, team, scorer=champion_scorer(settings), forecast_config=fc, thresholds=th
    )


@task(cache_policy=NO_CACHE)
def write_brief(settings: Settings, brief: dict) -> Path:
    """Store the brief as ``briefs/<week>/<team>.json`` (atomically)."""
    path = briefs_dir(settings) / brief["week"] / f"{_slug(brief['team'])}.json"
    return write_json(path, brief, default=str, indent=1)


def _slug(team: str) -> str:
    return "".join(ch if ch.isalnum() else "-" for ch in team).strip("-").lower()


@task(cache_policy=NO_CACHE, retries=2, retry_delay_seconds=5)
def log_briefs(settings: Settings, week: str, paths: list[Path], data_hash: str) -> str:
    """One MLflow run (experiment ``weekly_briefs``) holding every team's brief as an artifact."""
    import mlflow

    from salespilot.training.tracking import client, tagged_experiment

    location = settings.mlflow_artifacts_dir.resolve().as_uri()
    mlflow.set_experiment(
        experiment_id=tagged_experiment(client(settings), "weekly_briefs", location)
    )
    with mlflow.start_run(run_name=f"briefs {week}") as run:
        mlflow.log_params({"week": week, "teams": len(paths), "data_hash": data_hash})
        for p in paths:
            mlflow.log_artifact(str(p), artifact_path=f"briefs/{week}")
        return run.info.run_id


@flow(name="weekly_briefs")
def weekly_briefs(
    teams: list[str] | None = None, data_dir: str | None = None, webhook_url: str | None = None
) -> dict[str, Any]:
    """Every team's brief for the week that just ended: stored, pushed, logged to MLflow."""
    logger = get_run_logger()
    settings = Settings()
    history = load_and_validate(str(data_dir or settings.data_dir))
    reps = history.reps
    active = reps[reps["left_at"].isna()]
    wanted = sorted(active["team"].astype(str).unique())
    if teams:
        wanted = [t for t in wanted if t in set(teams)]
    url = webhook_url or settings.webhook_url
    outbox = Outbox(settings.state_dir / "outbox")
    paths, week = [], None
    for team in wanted:
        brief = build_brief(history, team, settings)
        week = brief["week"]
        paths.append(write_brief(settings, brief))
        if url:
            outbox.put(f"brief-{_slug(team)}-{week}", {"kind": "weekly_brief", **brief})
    summary: dict[str, Any] = {"week": week, "teams": wanted, "briefs": [str(p) for p in paths]}
    if paths:
        summary["mlflow_run_id"] = log_briefs(settings, week, paths, history.content_hash())
    logger.info("%d briefs written for %s", len(paths), week)
    if url:
        summary |= send_pending(outbox, url, settings)
    return summary
