"""History commands: ``validate`` (is this folder a valid interaction history?)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from salespilot.tables import print_table


def register(app: typer.Typer) -> None:
    app.command("validate")(validate)


def validate(
    directory: Annotated[
        Path | None,
        typer.Argument(
            help="History folder: one CSV or Parquet file per table "
            "(default: the data_dir setting, SALESPILOT_DATA_DIR)."
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object instead of the report.")
    ] = False,
    now: Annotated[
        str | None,
        typer.Option(help="Treat timestamps after this ISO time as future (default: now, UTC)."),
    ] = None,
) -> None:
    """Check a history folder against the contract and summarise it.

    Exit code 0 with a summary (rows per table, date range, deals, subscriptions, which
    models can be trained) when it is valid; exit code 1 with every problem found (file,
    column, rule, first offending rows) when it is not.
    """
    from rich.console import Console

    from salespilot.features.loader import load_history, summarize_history
    from salespilot.features.validation import HistoryValidationError, Problem

    console = Console(stderr=False, highlight=False)
    if directory is None:
        from salespilot.settings import Settings

        directory = Settings().data_dir
    try:
        when = _parse_now(now)
    except ValueError:
        _fail(
            console,
            as_json,
            [Problem("bad_option", f"--now {now!r} is not an ISO 8601 timestamp")],
            str(directory),
        )
    try:
        if as_json:
            history = load_history(directory, now=when)
        else:
            with console.status(f"Loading {directory} ..."):
                history = load_history(directory, now=when)
    except HistoryValidationError as exc:
        _fail(console, as_json, exc.problems, str(directory))
    summary = summarize_history(history)
    if as_json:
        typer.echo(json.dumps({"valid": True, "summary": summary}, default=str))
    else:
        _print_summary(console, summary)


def _parse_now(now: str | None) -> Any:
    if now is None:
        return None
    import pandas as pd

    return pd.Timestamp(now)


def _fail(console: Any, as_json: bool, problems: list, source: str) -> None:
    from rich.markup import escape

    if as_json:
        typer.echo(
            json.dumps(
                {"valid": False, "source": source, "problems": [p.to_dict() for p in problems]},
                default=str,
            )
        )
        raise typer.Exit(1)
    n = len(problems)
    console.print(
        f"[bold red]✗ {escape(source)} is not a valid history: {n} "
        f"problem{'s' if n != 1 else ''}[/]\n"
    )
    for p in problems:
        where, *details = p.render().splitlines()
        console.print(f"[bold red]{escape(where)}[/]")
        for line in details:
            console.print(escape(line), soft_wrap=True)
        console.print()
    console.print("Fix these and run [bold]salespilot validate[/] again; nothing was loaded.")
    raise typer.Exit(1)


def _print_summary(console: Any, summary: dict) -> None:
    from rich.markup import escape
    from rich.table import Table

    console.print(f"[bold green]✓ {escape(str(summary['source']))} is a valid history[/]")
    rng = summary["date_range"]
    console.print(f"  period: {_day(rng['start'])} → {_day(rng['end'])}")
    table = Table(title="Tables", title_justify="left")
    table.add_column("table")
    table.add_column("file")
    table.add_column("rows", justify="right")
    table.add_column("first event")
    table.add_column("last event")
    for name, info in summary["tables"].items():
        if info is None:
            table.add_row(name, "[dim]absent[/]", "", "", "")
        else:
            table.add_row(
                name,
                escape(info["file"] or ""),
                f"{info['rows']:,}",
                _day(info["first"]),
                _day(info["last"]),
            )
    print_table(console, table)
    deals = summary["deals"]
    console.print(
        f"Deals: {deals['open']:,} open ({deals['open_amount']:,.0f}), "
        f"{deals['won']:,} won ({deals['won_amount']:,.0f}), {deals['lost']:,} lost"
    )
    if summary["active_subscriptions"] is None:
        console.print("Active subscriptions: [dim]no subscriptions table[/]")
    else:
        console.print(
            f"Active subscriptions at the end: {summary['active_subscriptions']:,} "
            f"({summary['active_monthly_value']:,.0f} per month)"
        )
    console.print(f"Reps active at the end: {summary['reps_active']:,} of {summary['reps']:,}")
    for model in summary["models_available"]:
        console.print(f"  [green]✓[/] {model} can be trained")
    for message in summary["models_skipped"].values():
        console.print(f"  [yellow]–[/] {escape(message)}")


def _day(iso: str | None) -> str:
    return "" if iso is None else iso[:10]
