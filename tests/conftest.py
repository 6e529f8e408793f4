"""Shared fixtures: temporary state folders and small generated histories.

Area-specific fixtures live in ``tests/<area>/conftest.py``.
"""

from __future__ import annotations

import pytest

from salespilot.settings import Settings


@pytest.fixture
def settings(tmp_path, monkeypatch) -> Settings:
    """Settings pointing every folder at a fresh temporary directory."""
    monkeypatch.setenv("SALESPILOT_STATE_DIR", str(tmp_path / "state"))
    return Settings()


@pytest.fixture(scope="session")
def mlflow_template(tmp_path_factory):
    """``seed(state_dir)``: put a copy of one MLflow SQLite database, every migration applied
    and nothing logged, where a state folder keeps its registry (``state_dir/mlflow.db``).

    A new database file runs MLflow's migrations first (seconds each time); the suite runs
    them once here, and a test that starts from an empty registry copies the result."""
    import shutil
    from pathlib import Path

    import mlflow

    db = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
    mlflow.MlflowClient(f"sqlite:///{db}").search_experiments()

    def seed(state_dir) -> Path:
        state = Path(state_dir)
        state.mkdir(parents=True, exist_ok=True)
        shutil.copy(db, state / "mlflow.db")
        return state

    return seed


@pytest.fixture(scope="session")
def demo_history_dir(tmp_path_factory):
    """A small generated history (20 reps, 12 months, seed 7, end 2026-06-30) with truth/."""
    import pandas as pd

    from salespilot.features.demo import generate_history

    out = tmp_path_factory.mktemp("demo_history")
    generate_history(out, reps=20, months=12, seed=7, end=pd.Timestamp("2026-06-30"))
    return out


@pytest.fixture(scope="session")
def demo_history(demo_history_dir):
    """The small generated history, loaded and validated (``now`` fixed after its end)."""
    from salespilot.features.loader import load_history

    return load_history(demo_history_dir, now="2026-07-01")


@pytest.fixture(scope="session")
def trained_state(demo_history_dir, demo_history, tmp_path_factory, mlflow_template) -> Settings:
    """Settings of a state folder whose MLflow registry (SQLite) holds the three models trained
    on ``demo_history_dir``, each with a ``champion`` alias; load them with
    ``salespilot.training.load_model(name, settings=trained_state)``.

    On this small history the churn model is ``not_ready`` (its test ROC AUC's interval includes
    0.5), so the automatic rule leaves it challenger; it is promoted by hand here, as a user
    would, so that serving tests have all three models."""
    from salespilot.models import SPECS
    from salespilot.training import promote, train_model

    state = mlflow_template(tmp_path_factory.mktemp("trained_state"))
    settings = Settings(state_dir=state, data_dir=demo_history_dir)
    for spec in SPECS.values():
        result = train_model(spec, demo_history, settings, figures=False)
        if not result.champion:
            promote(spec.name, result.version, settings=settings, reason="promoted by hand")
    return settings
