"""CLI commands (see the package docstring). Filled in by the area that owns them."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    pass
