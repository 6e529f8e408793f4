"""``salespilot import``: a raw CRM export (files or a database) -> a contract folder."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    app.command(name="import")(import_)


def import_(
    mapping: Annotated[Path, typer.Option("--mapping", "-m", help="The mapping YAML file.")],
    source: Annotated[
        str,
        typer.Option(
            "--source",
            "-s",
            help="A folder of CSV/Parquet exports, or a database URL (postgresql://user@host/db).",
        ),
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="The contract folder to write.")],
    rejects: Annotated[
        Path | None,
        typer.Option(
            "--rejects",
            help="Import the valid rows; write every rejected row with its reason to this CSV.",
        ),
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="Output files: csv or parquet.")] = "csv",
    now: Annotated[
        str | None,
        typer.Option(help="Treat timestamps after this ISO time as future (default: now, UTC)."),
    ] = None,
    json_out: Annotated[
        bool, typer.Option("--json", help="Print one JSON object instead.")
    ] = False,
) -> None:
    """Turn a raw CRM export into a validated history folder, as a mapping file says.

    Validation uses the same rules and report as [bold]salespilot validate[/bold]. Without
    --rejects any broken row stops the import (exit 1) and nothing is written.
    """
    from rich.console import Console
    from rich.markup import escape

    from salespilot.features.mapping import (
        ImportValidationError,
        MappingError,
        SourceError,
        import_history,
    )

    console = Console(stderr=json_out)
    err = Console(stderr=True)
    if fmt not in ("csv", "parquet"):
        err.print(f"[red]--format must be csv or parquet, not {fmt!r}[/red]")
        raise typer.Exit(1)
    try:
        with console.status(f"importing {source} ..."):
            result = import_history(
                mapping,
                source,
                out,
                rejects=rejects,
                fmt=fmt,
                now=now,  # type: ignore[arg-type]
            )
    except ImportValidationError as e:
        if json_out:
            typer.echo(json.dumps({**e.to_dict(), "origins": e.origins}))
        else:
            err.print(str(e), markup=False, highlight=False)
        raise typer.Exit(1) from None
    except (MappingError, SourceError) as e:
        if json_out:
            typer.echo(json.dumps({"valid": False, "error": str(e)}))
        else:
            err.print(f"[red]error:[/red] {escape(str(e))}", highlight=False)
        raise typer.Exit(1) from None

    if json_out:
        typer.echo(json.dumps(result.to_dict()))
        return
    for note in result.notes:
        console.print(f"[yellow]note:[/yellow] {note}", highlight=False)
    rows = ", ".join(f"{name} {n:,}" for name, n in result.rows.items())
    console.print(f"[green]imported[/green] into {result.out_dir}: {rows}")
    if rejects is not None:
        colour = "yellow" if result.rejected else "green"
        console.print(
            f"[{colour}]{result.rejected:,} rows rejected[/{colour}], written to {rejects}"
            + (
                " (" + ", ".join(f"{k}: {v}" for k, v in result.rejected_by_rule.items()) + ")"
                if result.rejected
                else ""
            )
        )
    declared = {
        t: result.custom_fields.declared(t) for t in ("opportunities", "accounts", "contacts")
    }
    declared = {t: cols for t, cols in declared.items() if cols}
    if declared:
        shown = "; ".join(f"{t}: {', '.join(c)}" for t, c in declared.items())
        console.print(f"custom features declared ({shown}) in {out / 'custom_fields.json'}")
    console.print(f"next: [bold]salespilot validate {out}[/bold]")
