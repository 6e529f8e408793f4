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
