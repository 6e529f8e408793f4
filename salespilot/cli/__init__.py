"""The ``salespilot`` command line: one typer app, one module per area.

Each module in this package exposes ``register(app)`` and adds its commands; heavy libraries
(mlflow, lightgbm, shap, prefect) are imported inside the commands so ``--help`` stays instant.
"""

from __future__ import annotations

import typer

from salespilot.cli import (
    demo_cmds,
    features_cmds,
    flow_cmds,
    history_cmds,
    import_cmds,
    insights_cmds,
    model_cmds,
    serve_cmds,
    targets_cmds,
)

app = typer.Typer(
    name="salespilot",
    help=(
        "SalesPilot: ranked follow-up lists for reps, defensible targets for managers, "
        "tracked and promoted models for data scientists - from your CRM history."
    ),
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_show_locals=False,
)

for _module in (
    flow_cmds,
    demo_cmds,
    history_cmds,
    import_cmds,
    features_cmds,
    model_cmds,
    serve_cmds,
    targets_cmds,
    insights_cmds,
):
    _module.register(app)


@app.command()
def version() -> None:
    """Print the SalesPilot version."""
    from importlib.metadata import version as _v

    typer.echo(_v("salespilot"))


def main() -> None:
    app()
