"""Forecast: roll-ups are sums of the same draws, seeded, point-in-time."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from salespilot.targets.forecast import ForecastConfig, build_forecast, ramp_factor
from salespilot.targets.periods import next_period, parse_period
from salespilot.targets.pipeline import empirical_win_probability, open_pipeline

PERIOD = parse_period("2025-Q4")


@pytest.fixture(scope="module")
def forecast(small_history):
    as_of = PERIOD.start
    scored = empirical_win_probability(small_history, as_of, open_pipeline(small_history, as_of))
    return build_forecast(
        small_history,
        PERIOD,
        as_of=as_of,
        scored_deals=scored,
        config=ForecastConfig(simulations=2000),
    )


def test_parse_period():
    q = parse_period("2026-Q1")
    assert (q.start, q.end, q.label) == (
        pd.Timestamp("2026-01-01"),
        pd.Timestamp("2026-04-01"),
        "2026-Q1",
    )
    m = parse_period("2026-03")
    assert (m.start, m.end, m.months) == (pd.Timestamp("2026-03-01"), pd.Timestamp("2026-04-01"), 1)
    assert parse_period("2026q4").shift(1).label == "2027-Q1"
    assert next_period(pd.Timestamp("2026-02-10")).label == "2026-Q2"
    with pytest.raises(ValueError, match="2026-Q1"):
        parse_period("Q1 2026")


def test_team_distribution_is_the_sum_of_its_reps_draws(forecast):
    reps, rep_draws = forecast.unit_draws("rep")
    teams, team_draws = forecast.unit_draws("team")
    team_of = forecast.cells.drop_duplicates("rep_id").set_index("rep_id")["team"]
    for j, team in enumerate(teams):
        cols = [i for i, r in enumerate(reps) if team_of[r] == team]
        np.testing.assert_allclose(team_draws[:, j], rep_draws[:, cols].sum(axis=1))
    _, company = forecast.unit_draws("company")
    for by in ("team", "region", "product_line", "rep"):
        np.testing.assert_allclose(company[:, 0], forecast.unit_draws(by)[1].sum(axis=1))


def test_quantiles_of_the_sum_are_not_the_sum_of_quantiles(forecast):
    reps = forecast.summary("rep")
    company = forecast.summary("company").iloc[0]
    # Independent deals diversify: the company's P90 is well below the sum of the reps' P90s,
    # and its P10 well above the sum of their P10s; the means add up exactly.
    assert company["p90"] < 0.95 * reps["p90"].sum()
    assert company["p10"] > 1.05 * reps["p10"].sum()
    assert company["mean"] == pytest.approx(reps["mean"].sum(), rel=1e-9)
    assert (reps["p10"] <= reps["p50"]).all() and (reps["p50"] <= reps["p90"]).all()


def test_summary_splits_pipeline_and_new_business(forecast):
    s = forecast.summary("team")
    np.testing.assert_allclose(s["mean"], s["pipeline_mean"] + s["new_business_mean"])
    assert (s["pipeline_mean"] > 0).all() and (s["new_business_mean"] > 0).all()


def test_seeded_and_reproducible(small_history, forecast):
    as_of = PERIOD.start
    scored = empirical_win_probability(small_history, as_of, open_pipeline(small_history, as_of))
    again = build_forecast(
        small_history,
        PERIOD,
        as_of=as_of,
        scored_deals=scored,
        config=ForecastConfig(simulations=2000),
    )
    np.testing.assert_array_equal(again.draws, forecast.draws)


def test_forecast_uses_only_data_before_as_of(small_history, forecast):
    """Events after as_of (new deals, closes, stage moves) must not change the forecast."""
    from salespilot.features.history import History

    h = small_history
    as_of = PERIOD.start
    opp = h.opportunities.copy()
    late = opp["created_at"] >= as_of
    opp = opp[~late].copy()
    closed_late = opp["closed_at"] >= as_of
    opp.loc[closed_late, ["closed_at"]] = pd.NaT
    opp.loc[closed_late, "status"] = "open"
    cut = History(
        reps=h.reps,
        accounts=h.accounts,
        opportunities=opp,
        stage_changes=h.stage_changes[h.stage_changes["changed_at"] < as_of],
        activities=h.activities[h.activities["occurred_at"] < as_of],
    )
    scored = empirical_win_probability(cut, as_of, open_pipeline(cut, as_of))
    truncated = build_forecast(
        cut, PERIOD, as_of=as_of, scored_deals=scored, config=ForecastConfig(simulations=2000)
    )
    np.testing.assert_allclose(truncated.draws, forecast.draws)


def test_new_hire_is_ramped(forecast):
    reps = forecast.cells.drop_duplicates("rep_id").set_index("rep_id")
    new = reps[reps["tenure_months"] < 6]
    assert len(new) == 1 and 0 < new["ramp"].iloc[0] < 1
    nb = forecast.summary("rep").set_index("unit")["new_business_mean"]
    veterans = nb.drop(new.index)
    # Its new business is the team's rate times its ramp: below the veterans' median.
    assert nb[new.index[0]] < veterans.median()
    np.testing.assert_allclose(ramp_factor(np.array([0, 3, 6, 12]), 6), [0, 0.5, 1, 1])


def test_forecast_rejects_a_past_period(small_history):
    with pytest.raises(ValueError, match="ended before"):
        build_forecast(
            small_history,
            parse_period("2024-Q1"),
            as_of=PERIOD.start,
            scored_deals=pd.DataFrame({"opportunity_id": [], "p_win": []}),
        )


def test_a_scorer_says_what_its_p_win_means_and_the_forecast_reports_it(small_history):
    from salespilot.models.win_probability import SPEC
    from salespilot.targets.forecast import forecast_with
    from salespilot.targets.modelled import Scorer, lightgbm_scorer
    from salespilot.targets.service import empirical_scorer

    refit = lightgbm_scorer(horizon_days=92)
    assert isinstance(refit, Scorer) and refit.horizon_days == 92 and refit.version is None
    assert refit.source == "lightgbm refit per period (92-day label)"
    assert refit.features == tuple(SPEC.features)
    assert isinstance(empirical_scorer, Scorer) and empirical_scorer.source == "empirical"
    assert empirical_scorer.horizon_days is None
    own = Scorer(predict=empirical_scorer.predict, source="by hand", horizon_days=30)
    config = ForecastConfig(simulations=200)
    fc = forecast_with(own, small_history, PERIOD, as_of=PERIOD.start, config=config)
    assert fc.p_win_source == "by hand"
    plain = forecast_with(
        empirical_scorer, small_history, PERIOD, as_of=PERIOD.start, config=config
    )
    assert plain.p_win_source == "empirical"
