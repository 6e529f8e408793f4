"""/ready: ready when every model the data supports is loaded (no more, no less)."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

from salespilot.serving.models_info import readiness


def _holder(state):
    return SimpleNamespace(state=state, last_error=None)


def _without_churn_model(state):
    return {n: s for n, s in state.models.items() if n != "churn_risk"}


def test_history_without_subscriptions_is_ready_without_churn_model(state):
    no_subs = dataclasses.replace(state.history, subscriptions=None)  # like the Maven example
    s = dataclasses.replace(
        state, history_source=no_subs, history_tables=(), models=_without_churn_model(state)
    )
    assert readiness(_holder(s)).ready is True


def test_a_supported_model_missing_is_not_ready(state):
    s = dataclasses.replace(state, models=_without_churn_model(state))
    assert state.history.subscriptions is not None
    assert readiness(_holder(s)).ready is False
