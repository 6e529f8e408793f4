"""Flow commands: ``run`` (one flow once, by hand), ``schedule`` (serve the deployments) and
``demo`` (the whole product on demo data in one command)."""

from __future__ import annotations

import json
import os
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer


class FlowName(StrEnum):
    build_features = "build_features"
    train_models = "train_models"
    morning_lists = "morning_lists"
    backtest_targets = "backtest_targets"
    weekly_briefs = "weekly_briefs"


FLOWS = tuple(f.value for f in FlowName)


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
    app.command("run")(run)
    app.command("schedule")(schedule)


def _console(stderr: bool = False):
    from rich.console import Console

    return Console(stderr=stderr, highlight=False)


def _fail(message: str) -> None:
    from salespilot.cli.interrupt import INTERRUPTED

    if INTERRUPTED.is_set():  # what failed after a Ctrl-C is the interrupt (main says so)
        raise typer.Exit(130)
    _console(stderr=True).print(f"[red]error:[/red] {message}")
    raise typer.Exit(1)


def _quiet_libraries() -> None:
    """Prefect logs every task state and MLflow every step at INFO; the CLI shows its own
    progress instead (warnings and errors still come through)."""
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    # the temporary local API migrates its SQLite database on first start: slow on a busy laptop
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")


def _flow(name: str):
    if name == "build_features":
        from salespilot.flows.features_flow import build_features

        return build_features
    if name == "train_models":
        from salespilot.flows.training_flow import train_models

        return train_models
    if name == "morning_lists":
        from salespilot.flows.morning import morning_lists

        return morning_lists
    if name == "backtest_targets":
        from salespilot.flows.backtest import backtest_targets

        return backtest_targets
    if name == "weekly_briefs":
        from salespilot.flows.brief_flow import weekly_briefs

        return weekly_briefs
    raise typer.BadParameter(f"unknown flow {name!r}; choose one of {', '.join(FLOWS)}")


def run(
    flow_name: Annotated[FlowName, typer.Argument(metavar="FLOW", help=" | ".join(FLOWS))],
    data: Annotated[
        Path | None, typer.Option("--data", help="History folder (default from settings).")
    ] = None,
    model: Annotated[
        list[str] | None, typer.Option("--model", help="train_models: only these models.")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the flow's result as JSON.")
    ] = False,
) -> None:
    """Run one flow once, now (its run, task states and logs are in Prefect like any other)."""
    _quiet_libraries()
    kwargs: dict = {}
    if data is not None:
        if flow_name.value in ("build_features", "train_models", "backtest_targets",
                               "weekly_briefs"):  # fmt: skip
            kwargs["data_dir"] = str(data)
        else:
            os.environ["SALESPILOT_DATA_DIR"] = str(data)
    if model and flow_name.value == "train_models":
        kwargs["models"] = list(model)
    with _console().status(f"running {flow_name.value} ..."):
        state = _flow(flow_name.value)(**kwargs, return_state=True)
    if not state.is_completed():
        try:
            state.result()
        except Exception as exc:
            _fail(f"{flow_name.value} failed: {exc}")
        _fail(f"{flow_name.value} ended {state.type.value}")
    result = state.result()
    if as_json:
        typer.echo(json.dumps(result, default=str))
    else:
        _console().print_json(json.dumps(result, default=str))


def schedule(
    register_only: Annotated[
        bool,
        typer.Option(help="Register the deployments and exit (a served process runs them)."),
    ] = False,
) -> None:
    """Serve the scheduled deployments: morning lists, nightly features, weekly retraining,
    Monday briefs.

    Starts a local Prefect server (SQLite, in the state folder) unless
    SALESPILOT_PREFECT_API_URL points at an existing one.
    """
    from salespilot.flows import schedules
    from salespilot.settings import Settings

    settings = Settings()
    teams = schedules.team_zones(settings)
    server = None
    url = settings.prefect_api_url
    c = _console()
    if url is None:
        server = schedules.LocalPrefectServer(settings.state_dir / "prefect")
        with c.status("starting a local Prefect server ..."):
            url = server.start()
        c.print(f"Prefect server: {url.removesuffix('/api')} (SQLite in {server.home})")
    try:
        ids = schedules.register(settings, url, teams)
        for d in schedules.deployments(settings, teams):
            c.print(f"  [bold]{d.flow_name}/{d.name}[/bold]: {schedules.schedule_text(d)}")
        c.print(f"{len(ids)} deployments registered.")
        if not register_only:
            c.print("Serving them; Ctrl-C to stop.")
            schedules.serve_forever(settings, url, teams)
    finally:
        if server is not None:
            server.stop()


def demo(
    port: Annotated[int, typer.Option(help="Port of the demo API.")] = 8000,
    reps: Annotated[int, typer.Option(help="Reps in the generated history.")] = 30,
    months: Annotated[int, typer.Option(help="Months of generated history.")] = 18,
    seed: Annotated[int, typer.Option(help="Seed of the generated history.")] = 42,
    serve: Annotated[bool, typer.Option(help="Start the API at the end.")] = True,
) -> None:
    """The whole product on demo data: generate, validate, build features, train, rank, serve.

    A second run reuses what is already built (the history, the features, the champions).
    """
    _quiet_libraries()
    from salespilot.cli.demo import run_demo

    try:
        run_demo(port=port, reps=reps, months=months, seed=seed, serve=serve)
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    except Exception as exc:  # a readable line, not a traceback; details with --debug
        if os.environ.get("SALESPILOT_DEBUG"):
            raise
        _fail(f"{type(exc).__name__}: {exc}\n(run again with SALESPILOT_DEBUG=1 for the traceback)")
