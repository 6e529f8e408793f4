"""Helpers that nothing calls stay out of the code base (one definition per concept)."""

from __future__ import annotations

import importlib

import pytest


@pytest.mark.parametrize(
    ("module", "name"),
    [
        ("salespilot.serving.errors", "not_found"),
        ("salespilot.serving.errors", "forbidden"),
        ("salespilot.training.checks", "leak_warnings"),
        ("salespilot.features.pit", "closed_before"),
        ("salespilot.serving.state", "ServingState.account_team"),
        ("salespilot.targets.periods", "Period.shift_months"),
        ("salespilot.features.demo.generator", "Simulation._quarter_end"),
        # the data's "now" is pit.data_as_of, defined once
        ("salespilot.features.history", "History.end"),
        ("salespilot.targets.pipeline", "data_as_of"),
        ("salespilot.serving.state", "_data_as_of"),
    ],
)
def test_unused_helper_is_gone(module, name):
    obj = importlib.import_module(module)
    *owners, attr = name.split(".")
    for owner in owners:
        obj = getattr(obj, owner)
    assert not hasattr(obj, attr), f"{module}.{name} is unused and should not exist"


def test_no_unused_dependency():
    """duckdb was declared and never imported: a dependency is declared only where used."""
    import tomllib
    from pathlib import Path

    project = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
    deps = [d.lower() for d in project["project"]["dependencies"]]
    assert not [d for d in deps if d.startswith("duckdb")]
