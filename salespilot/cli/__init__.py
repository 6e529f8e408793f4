"""The ``salespilot`` command line: one typer app, one module per area.

Each ``*_cmds`` module in this package exposes ``register(app)`` and adds its commands (``demo``
is the demo command's presentation); heavy libraries (mlflow, lightgbm, shap, prefect) are
imported inside the commands so ``--help`` stays instant.
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
from salespilot.cli.interrupt import run_interruptible


def _flags_show_no_type() -> None:
    """A flag takes no value, so its help row shows no ``<bool>`` type (Typer prints one)."""
    from typer.core import TyperOption

    shown = TyperOption.display_type_rich
    if getattr(shown, "_salespilot", False):
        return

    def display_type_rich(self: TyperOption, ctx: typer.Context) -> str | None:
        return None if self.is_flag else shown(self, ctx)

    display_type_rich._salespilot = True  # type: ignore[attr-defined]
    TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign]


_flags_show_no_type()

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
    run_interruptible(app)
