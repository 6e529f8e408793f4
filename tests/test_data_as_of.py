"""The data's "now" is defined once (``pit.data_as_of``): the API, the targets and the
features commands score a history as of the same instant."""

from __future__ import annotations

import pandas as pd
import pytest

from salespilot.features.pit import data_as_of, observed_end
from tests.features.factories import T0, make_history


@pytest.fixture
def quiet_history():
    """No activities; the latest event is an account created after the last deal closed."""
    return make_history(
        reps=[{"rep_id": "R1", "hired_at": T0 - pd.Timedelta(days=400)}],
        accounts=[
            {"account_id": "A1", "created_at": T0 - pd.Timedelta(days=300)},
            {"account_id": "A2", "created_at": T0 + pd.Timedelta(days=40, hours=5)},
        ],
        opportunities=[
            {
                "opportunity_id": f"O{i}",
                "created_at": T0 + pd.Timedelta(days=i),
                "status": s,
                "closed_at": T0 + pd.Timedelta(days=10 + i) if s != "open" else pd.NaT,
            }
            for i, s in enumerate(["won", "lost", "open", "won"])
        ],
    )


def test_the_data_now_is_just_after_the_latest_event_of_any_table(quiet_history):
    latest = T0 + pd.Timedelta(days=40, hours=5)
    assert observed_end(quiet_history) == latest
    assert data_as_of(quiet_history) == latest + pd.Timedelta(seconds=1)


def test_targets_and_api_use_the_same_now(quiet_history, settings):
    from salespilot.serving.state import MODEL_NAMES, ModelSlot, build_state
    from salespilot.targets.periods import period_containing
    from salespilot.targets.service import recommend

    now = data_as_of(quiet_history)
    period = period_containing(now, "quarter")
    assert recommend(quiet_history, period, by="rep").forecast.as_of == now
    models = {name: ModelSlot(name, None) for name in MODEL_NAMES}
    state = build_state(settings, history=quiet_history, models=models, persist_scores=False)
    assert state.as_of == now
