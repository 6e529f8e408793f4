"""The README's tour, command by command, on the small demo history and its trained models.

The commands are read from README.md itself (so an edit there is tested here); the ones that
need a running server (curl) or another program (mlflow ui) are left to the serving tests.
"""

from __future__ import annotations

import re
import shlex
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from salespilot.cli import app
from salespilot.settings import get_settings

README = Path(__file__).resolve().parents[1] / "README.md"


def tour_commands() -> list[list[str]]:
    """``salespilot`` command lines of the README's "A tour" section, in order."""
    text = README.read_text()
    tour = text.split("\n## A tour", 1)[1].split("\n## ", 1)[0]
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", tour, flags=re.S):
        for line in block.splitlines():
            if line.startswith("uv run salespilot "):
                commands.append(shlex.split(line, comments=True)[3:])
    return commands


def test_the_tour_has_the_commands_a_new_user_meets():
    names = [c[0] for c in tour_commands()]
    assert names[:2] == ["priorities", "tokens"] and {"targets", "health", "compare"} <= set(names)


@pytest.fixture
def tour_env(trained_state, tmp_path, monkeypatch):
    """The demo's layout in tmp_path: a registry with the three champions and a history long
    enough for the targets backtest (20 reps, 18 months: 4 quarters after 6 months)."""
    import pandas as pd

    from salespilot.features.demo import generate_history

    state = tmp_path / ".salespilot"
    state.mkdir()
    db = Path(str(trained_state.mlflow_tracking_uri).removeprefix("sqlite:///"))
    shutil.copy(db, state / "mlflow.db")
    generate_history(
        state / "demo-data", reps=20, months=18, seed=7, end=pd.Timestamp("2026-06-30")
    )
    monkeypatch.chdir(tmp_path)
    for k, v in {
        "SALESPILOT_STATE_DIR": state,
        "SALESPILOT_DATA_DIR": state / "demo-data",
        "SALESPILOT_MLFLOW_TRACKING_URI": f"sqlite:///{state / 'mlflow.db'}",
        "SALESPILOT_TARGETS_SIMULATIONS": 500,
        "COLUMNS": 80,
    }.items():
        monkeypatch.setenv(k, str(v))
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


def test_every_tour_command_runs_on_the_demo_state(tour_env):
    for args in tour_commands():
        r = CliRunner().invoke(app, args)
        assert r.exit_code == 0, (args, r.output)
        assert "Traceback" not in r.output, (args, r.output)
    assert list((tour_env / "fans").glob("*.png"))
