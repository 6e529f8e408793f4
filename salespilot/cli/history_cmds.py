"""History commands: ``generate`` (demo data) and ``validate``."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    pass
