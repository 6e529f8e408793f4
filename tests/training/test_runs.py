"""The commands and the flows share one path: the same table plans, horizons, reports."""

from __future__ import annotations

import pytest

from salespilot.models import SPECS
from salespilot.training.checks import NotEnoughDataError
from salespilot.training.runs import failure_report, feature_table_plans
from salespilot.training.train import MissingTablesError
from tests.features.factories import make_history


def test_each_table_carries_its_models_horizon_and_needs(settings):
    h = make_history(opportunities=[{"opportunity_id": "O1"}])  # no subscriptions, no contacts
    plans = {p.table: p for p in feature_table_plans(h, settings)}
    assert plans["deals"].horizon_days == SPECS["win_probability"].horizon_days == 60
    assert plans["accounts"].horizon_days == SPECS["churn_risk"].horizon_days == 90
    assert plans["deals"].skipped is None
    assert "add subscriptions.csv" in plans["accounts"].skipped
    assert "add contacts.csv" in plans["attempts"].skipped


def test_the_horizon_setting_and_an_explicit_horizon_reach_the_plan(settings):
    h = make_history()
    tuned = settings.model_copy(update={"horizon_days": {"win_probability": 30}})
    assert feature_table_plans(h, tuned, ["deals"])[0].horizon_days == 30
    both = {p.table: p.horizon_days for p in feature_table_plans(h, settings, horizon_days=45)}
    assert both["deals"] == both["accounts"] == 45
    with pytest.raises(ValueError, match="unknown table"):
        feature_table_plans(h, settings, ["deal"])


@pytest.mark.parametrize(
    ("exc", "report"),
    [
        (MissingTablesError("churn_risk skipped: add subscriptions.csv"), "skipped"),
        (NotEnoughDataError("too few won deals"), "error"),
        (KeyError("unknown feature x"), "error"),
        (RuntimeError("registry away"), "error"),
    ],
)
def test_a_model_that_did_not_train_is_reported_the_same_way(exc, report):
    out = failure_report(exc)
    assert list(out) == [report]
    assert str(exc.args[0]) in out[report]
