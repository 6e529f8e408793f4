"""Serving and the targets' scorer build deal features at the served win model's own horizon.

``owner_won_in_horizon_rate`` counts the owner's earlier deals won within the label horizon: a
version trained at 30 days must be served rows built at 30 days, not at the spec's default 60.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from salespilot.features.deals import deal_snapshot
from salespilot.features.pit import observed_end
from salespilot.models.win_probability import SPEC as WIN_SPEC
from salespilot.settings import Settings

HORIZON = 30


@pytest.fixture(scope="module")
def thirty_days(demo_history, demo_history_dir, tmp_path_factory) -> Settings:
    """A registry whose win champion was trained with a 30-day horizon (few trees: only the
    rows it is served matter here)."""
    from salespilot.training import promote, train_model

    settings = Settings(state_dir=tmp_path_factory.mktemp("thirty-days"), data_dir=demo_history_dir)
    result = train_model(
        WIN_SPEC,
        demo_history,
        settings,
        figures=False,
        horizon_days=HORIZON,
        params={"num_boost_round": 20},
    )
    if not result.champion:
        promote(WIN_SPEC.name, result.version, settings=settings, reason="promoted by hand")
    return settings


def _rows(history, as_of, horizon):
    rows = deal_snapshot(history, as_of, horizon_days=horizon)
    return rows.set_index(rows["opportunity_id"].astype(str))


def test_the_two_horizons_give_different_rows(demo_history):
    as_of = observed_end(demo_history).normalize()
    at_30, at_60 = _rows(demo_history, as_of, 30), _rows(demo_history, as_of, 60)
    rate = "owner_won_in_horizon_rate"
    assert not np.allclose(at_30[rate], at_60[rate])  # else the tests below prove nothing


def test_serving_scores_rows_built_at_the_versions_horizon(thirty_days, demo_history):
    from salespilot.serving.state import _load_models, build_state

    models = _load_models(thirty_days, None)
    assert WIN_SPEC.horizon_of(models["win_probability"].model) == HORIZON
    state = build_state(thirty_days, history=demo_history, models=models, persist_scores=False)
    served = state.win.values.set_index(pd.Index(state.win.ids))
    rate = "owner_won_in_horizon_rate"
    expected = _rows(demo_history, state.as_of, HORIZON).loc[served.index, rate]
    default = _rows(demo_history, state.as_of, WIN_SPEC.horizon_days).loc[served.index, rate]
    np.testing.assert_allclose(served[rate].to_numpy(float), expected.to_numpy(float))
    assert not np.allclose(served[rate].to_numpy(float), default.to_numpy(float))


def test_the_targets_champion_scorer_uses_the_versions_horizon(thirty_days, demo_history):
    from salespilot.targets.service import champion_scorer
    from salespilot.training import load_model

    scorer = champion_scorer(thirty_days)
    assert scorer is not None and scorer.horizon_days == HORIZON
    as_of = observed_end(demo_history).normalize()
    got = scorer.predict(demo_history, as_of).set_index("opportunity_id")["p_win"]
    model = load_model(WIN_SPEC.name, settings=thirty_days)
    rows = _rows(demo_history, as_of, HORIZON).loc[got.index.astype(str)]
    default = _rows(demo_history, as_of, WIN_SPEC.horizon_days).loc[got.index.astype(str)]
    np.testing.assert_allclose(got.to_numpy(), model.predict_proba(rows))
    assert not np.allclose(got.to_numpy(), model.predict_proba(default))


@pytest.fixture(scope="module")
def decision_rows(demo_history, demo_history_dir, tmp_path_factory) -> Settings:
    """A registry whose win champion learned from decision-time rows: each deal once, at its
    creation (deal age 0), as a lead list is trained."""
    import dataclasses

    from salespilot.training import promote, train_model

    settings = Settings(state_dir=tmp_path_factory.mktemp("decision"), data_dir=demo_history_dir)
    spec = dataclasses.replace(WIN_SPEC, rows="decision", decision_at="created_at")
    result = train_model(  # the demo's truth has no oracle for decision-time rows: none
        spec,
        demo_history,
        settings,
        figures=False,
        params={"num_boost_round": 20},
        oracle=lambda rows: None,
    )
    if not result.champion:
        promote(WIN_SPEC.name, result.version, settings=settings, reason="promoted by hand")
    return settings


def test_a_decision_row_model_scores_open_deals_as_of_their_creation(decision_rows, demo_history):
    from salespilot.features.deals import deal_rows_as_trained
    from salespilot.serving.state import _load_models, build_state

    models = _load_models(decision_rows, None)
    model = models["win_probability"].model
    assert model.metadata["rows"] == "decision"
    state = build_state(decision_rows, history=demo_history, models=models, persist_scores=False)
    scored = state.win.values
    # every open deal is scored as the model learned: at its creation, deal age 0
    assert len(scored) > 0 and (scored["deal_age_days"] == 0).all()
    now = _rows(demo_history, state.as_of, WIN_SPEC.horizon_days).loc[state.win.ids]
    assert (now["deal_age_days"] > 0).any()  # the rows of now, which the lists still read
    as_trained = deal_rows_as_trained(demo_history, now, model)
    created = demo_history.opportunities.set_index("opportunity_id")["created_at"]
    np.testing.assert_array_equal(
        as_trained["as_of"].to_numpy("datetime64[ns]"),
        created.loc[state.win.ids].to_numpy("datetime64[ns]"),
    )
    np.testing.assert_allclose(state.win.proba, model.predict_proba(as_trained))
    # the targets' scorer gives the same scores
    from salespilot.targets.service import champion_scorer

    got = champion_scorer(decision_rows).predict(demo_history, state.as_of)
    by_id = dict(zip(state.win.ids, state.win.proba, strict=True))
    np.testing.assert_allclose(got["p_win"], [by_id[str(i)] for i in got["opportunity_id"]])
