"""Fixtures for the targets tests: a small synthetic history and the shared demo history."""

from __future__ import annotations

import pytest

from targets.factories import make_history


@pytest.fixture(scope="session")
def small_history():
    """12 reps (one hired two months ago), 24 months, two teams, two product lines."""
    return make_history(reps=12, months=24, seed=0)


@pytest.fixture(scope="session")
def targets_demo_history(demo_history_dir):
    from salespilot.features.loader import load_history

    return load_history(demo_history_dir)


@pytest.fixture(scope="session")
def targets_backtest_history(tmp_path_factory):
    """A demo history long enough for a genuine "last year + 20 %" baseline: 12 reps,
    18 months to 2026-06-30, so 2026-Q1 and Q2 have their year-ago quarters."""
    import pandas as pd

    from salespilot.features.demo import generate_history
    from salespilot.features.loader import load_history

    out = tmp_path_factory.mktemp("targets_backtest_history")
    generate_history(out, reps=12, months=18, seed=7, end=pd.Timestamp("2026-06-30"))
    return load_history(out)
