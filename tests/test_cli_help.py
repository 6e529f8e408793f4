"""Every command's --help at 80 columns: no ``<bool>`` after a flag, no line past the width."""

from __future__ import annotations

import typer
from typer.testing import CliRunner

from salespilot.cli import app


def _commands(group, prefix=()):
    for name, cmd in group.commands.items():
        if hasattr(cmd, "commands"):
            yield from _commands(cmd, (*prefix, name))
        else:
            yield (*prefix, name)


def test_help_of_every_command_reads_at_80_columns(monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    names = list(_commands(typer.main.get_command(app)))
    assert ("schedule",) in names and ("priorities",) in names
    for name in names:
        result = CliRunner().invoke(app, [*name, "--help"], terminal_width=80)
        assert result.exit_code == 0, (name, result.output)
        assert "<bool>" not in result.output, (name, result.output)
        wide = [line for line in result.output.splitlines() if len(line) > 80]
        assert not wide, (name, wide)
