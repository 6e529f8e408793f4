"""Feature commands: ``salespilot features`` builds the point-in-time feature tables."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from salespilot.tables import print_table

TABLES = ("deals", "accounts", "attempts")


def register(app: typer.Typer) -> None:
    app.command("features")(features)


def features(
    data: Annotated[
        Path | None,
        typer.Option("--data", help="History folder (default: settings.data_dir)."),
    ] = None,
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of",
            help="Build only the snapshot for this one date/time (UTC ISO 8601), for scoring.",
        ),
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Output folder (default: settings.features_dir).")
    ] = None,
    horizon_days: Annotated[
        int | None,
        typer.Option(
            "--horizon-days",
            min=1,
            help="Label horizon of deals and accounts (default: each model's own, as `train` "
            "uses it: the horizon_days setting, else 60 days win, 90 days churn).",
        ),
    ] = None,
    start: Annotated[
        str | None, typer.Option(help="First as_of of the grid (default: 60 days in).")
    ] = None,
    end: Annotated[
        str | None, typer.Option(help="Last as_of of the grid (default: the end).")
    ] = None,
    freq: Annotated[str, typer.Option(help="Grid frequency (pandas offset alias).")] = "W-MON",
    tables: Annotated[
        str, typer.Option(help="Comma-separated tables to build: deals,accounts,attempts.")
    ] = ",".join(TABLES),
    as_json: Annotated[
        bool,
        typer.Option("--json", help="Print one JSON object (what was written) and nothing else."),
    ] = False,
) -> None:
    """Build point-in-time feature tables from a history folder.

    Without --as-of: labelled training sets on a weekly grid (deals.parquet, accounts.parquet,
    attempts.parquet) plus the snapshot to score now (snapshots/deals.parquet,
    snapshots/accounts.parquet, as of the data's now: just after the last event). With
    --as-of: only the snapshots, as of that date. The tables are the build_features flow's:
    each labelled with its model's horizon, so `train` reuses them.
    """
    import pandas as pd
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from salespilot.features.loader import load_history
    from salespilot.features.pit import data_as_of, feature_cache, to_utc_naive
    from salespilot.features.store import SNAPSHOTS_DIR, write_feature_tables
    from salespilot.features.training_sets import (
        FEATURE_SET_VERSION,
        as_of_grid,
        build_training_set,
        snapshot,
    )
    from salespilot.features.validation import HistoryValidationError
    from salespilot.settings import get_settings
    from salespilot.training.runs import feature_table_plans

    console = Console(stderr=as_json, highlight=False)
    settings = get_settings()
    data = data or settings.data_dir
    out = out or settings.features_dir
    wanted = [t.strip() for t in tables.split(",") if t.strip()]
    unknown = [t for t in wanted if t not in TABLES]
    if unknown:  # before the history loads: a typo answers at once
        _fail(
            console,
            as_json,
            f"unknown table(s) {', '.join(unknown)}; choose from {', '.join(TABLES)}",
        )
    try:
        when = None if as_of is None else to_utc_naive(as_of)
        grid_start = None if start is None else pd.Timestamp(start)
        grid_end = None if end is None else pd.Timestamp(end)
    except ValueError as exc:
        _fail(console, as_json, f"bad date: {exc}")
    if not Path(data).exists():
        _fail(console, as_json, f"history folder {data} does not exist")
    try:
        with console.status(f"Loading {data} ..."):
            history = load_history(data, observed_until=settings.observed_until)
    except HistoryValidationError as exc:
        _fail(console, as_json, f"{data} is not a valid history:\n{exc}")

    history_hash = history.content_hash()
    now = when if when is not None else data_as_of(history)
    results: dict[str, Any] = {}
    skipped: dict[str, str] = {}
    built: dict[str, pd.DataFrame] = {}
    plans = feature_table_plans(history, settings, wanted, horizon_days=horizon_days)
    skipped = {p.table: p.skipped for p in plans if p.skipped}
    todo = [p for p in plans if not p.skipped]

    progress = Progress(
        TextColumn("[bold]{task.description:<22}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("as_of"),
        TimeElapsedColumn(),
        console=console,
        disable=as_json,
    )
    with feature_cache(history), progress:
        if when is None:
            grid = as_of_grid(history, grid_start, grid_end, freq)
            for plan in todo:
                name = plan.table
                task = progress.add_task(f"{name} (training set)", total=max(len(grid), 1))
                built[name] = build_training_set(
                    history,
                    name,
                    grid,
                    plan.horizon_days,
                    progress=lambda done, total, task=task: progress.update(task, completed=done),
                )
        for name in (p.table for p in todo if p.table != "attempts"):
            task = progress.add_task(f"{name} (snapshot)", total=1)
            built[f"{SNAPSHOTS_DIR}/{name}"] = snapshot(history, name, now)
            progress.update(task, completed=1)

    # each training table with its model's horizon (what `train` checks before reusing it)
    horizons = {p.table: p.horizon_days for p in todo if p.table in built}
    # one build: every table written whole, then the manifest naming them (a kill before it
    # leaves tables the manifest does not name, which readers refuse by name)
    written = write_feature_tables(
        built,
        out,
        history_hash=history_hash,
        history_source=str(data),
        extras={name: {"horizon_days": days} for name, days in horizons.items()},
    )
    for name, path in written.items():
        df = built[name]
        results[name] = {
            "path": str(path),
            "rows": len(df),
            "as_of_min": None if df.empty else str(df["as_of"].min()),
            "as_of_max": None if df.empty else str(df["as_of"].max()),
        }
    summary = {
        "out_dir": str(out),
        "history_hash": history_hash,
        "feature_set_version": FEATURE_SET_VERSION,
        "snapshot_as_of": str(now),
        "tables": results,
        "skipped": skipped,
    }
    if as_json:
        typer.echo(json.dumps(summary))
        return
    from rich.table import Table

    table = Table(
        title=f"Feature tables in {out}  (history {history_hash}, v{FEATURE_SET_VERSION})"
    )
    for col in ("table", "rows", "as_of from", "as_of to"):
        table.add_column(col)
    for name, r in results.items():
        table.add_row(name, f"{r['rows']:,}", r["as_of_min"] or "-", r["as_of_max"] or "-")
    print_table(console, table)
    for name, why in skipped.items():
        console.print(f"[yellow]skipped {name}[/]: {why}")


def _fail(console: Any, as_json: bool, message: str) -> None:
    if as_json:
        typer.echo(json.dumps({"error": message}))
    else:
        from rich.markup import escape

        console.print(f"[red]error:[/] {escape(message)}")
    raise typer.Exit(code=1)
