"""``salespilot generate``: write a demo CRM history with ground truth."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from salespilot.tables import print_table


def register(app: typer.Typer) -> None:
    app.command(name="generate")(generate)


def generate(
    out: Annotated[Path, typer.Option("--out", help="Folder to write the history into.")] = Path(
        "demo-data"
    ),
    reps: Annotated[int, typer.Option("--reps", min=1, help="Sales reps at the start.")] = 20,
    months: Annotated[
        int, typer.Option("--months", min=1, help="Months of history before --end.")
    ] = 12,
    seed: Annotated[int, typer.Option("--seed", help="Random seed (same seed, same files).")] = 0,
    end: Annotated[
        str | None,
        typer.Option("--end", help="The demo's 'now' (ISO date, UTC); default today 00:00 UTC."),
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="csv or parquet.")] = "csv",
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the summary as one JSON object.")
    ] = False,
) -> None:
    """Generate a realistic demo CRM history (contract tables + truth/) for trying SalesPilot."""
    import pandas as pd
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from salespilot.features.demo import generate_history

    err = Console(stderr=True)
    if fmt not in ("csv", "parquet"):
        err.print(f"[red]--format must be csv or parquet, not {fmt!r}[/red]")
        raise typer.Exit(1)
    try:
        end_ts = None if end is None else pd.Timestamp(end)
    except ValueError:
        err.print(f"[red]--end {end!r} is not a date (use e.g. 2026-06-30)[/red]")
        raise typer.Exit(1) from None
    with Progress(
        TextColumn("[bold]simulating days"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=err,
        disable=as_json,
    ) as bar:
        task = bar.add_task("days", total=None)

        def tick(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        try:
            summary = generate_history(
                out, reps=reps, months=months, seed=seed, end=end_ts, fmt=fmt, progress=tick
            )
        except (OSError, ValueError) as e:
            err.print(f"[red]cannot generate into {out}: {e}[/red]")
            raise typer.Exit(1) from None
    if as_json:
        typer.echo(json.dumps(summary))
        return
    table = Table(
        title=f"demo history in {summary['out_dir']} ({summary['start'][:10]} .. {summary['end'][:10]})"
    )
    table.add_column("table")
    table.add_column("rows", justify="right")
    for name, n in summary["rows"].items():
        table.add_row(name, f"{n:,}")
    print_table(Console(), table)
    Console().print(f"{sum(summary['rows'].values()):,} rows in {summary['seconds']} s")
