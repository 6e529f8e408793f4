"""Targets: quantiles, top-down allocation with caps/floors, ramp, gap."""

from __future__ import annotations

import numpy as np
import pytest

from salespilot.targets.allocation import TargetConfig, allocate, recommend_targets
from salespilot.targets.forecast import ForecastConfig
from salespilot.targets.periods import parse_period
from salespilot.targets.service import recommend


def test_allocate_is_proportional_when_no_bound_binds():
    shares, status = allocate(100.0, np.array([1.0, 3.0]), np.zeros(2), np.full(2, 1e9))
    assert status == "ok"
    np.testing.assert_allclose(shares, [25.0, 75.0])


def test_allocate_sums_to_the_total_and_respects_caps_and_floors():
    w = np.array([10.0, 1.0, 5.0, 0.0])
    lo = np.array([2.0, 3.0, 1.0, 4.0])
    hi = np.array([6.0, 8.0, 9.0, 5.0])
    for total in (10.5, 15.0, 20.0, 27.9):
        shares, status = allocate(total, w, lo, hi)
        assert status == "ok"
        assert shares.sum() == pytest.approx(total, abs=1e-6)
        assert (shares >= lo - 1e-9).all() and (shares <= hi + 1e-9).all()
    shares, _ = allocate(18.0, w, lo, hi)
    # The big unit is capped, the small one floored, the zero-reach one floored, the rest
    # proportional: 6 + 3 + 5 + 4.
    np.testing.assert_allclose(shares, [6.0, 3.0, 5.0, 4.0], atol=1e-6)


def test_allocate_outside_the_bounds_scales_them_and_says_so():
    lo, hi = np.array([2.0, 4.0]), np.array([4.0, 8.0])
    shares, status = allocate(24.0, np.ones(2), lo, hi)
    assert status == "above_caps" and shares.sum() == pytest.approx(24.0)
    np.testing.assert_allclose(shares, [8.0, 16.0])
    shares, status = allocate(3.0, np.ones(2), lo, hi)
    assert status == "below_floors" and shares.sum() == pytest.approx(3.0)


def test_target_config_validates():
    with pytest.raises(ValueError, match="stretch_quantile"):
        TargetConfig(base_quantile=0.8, stretch_quantile=0.5)
    with pytest.raises(ValueError, match="between 0 and 1"):
        TargetConfig(base_quantile=1.5)


@pytest.fixture(scope="module")
def rep_plan(small_history):
    return recommend(
        small_history,
        parse_period("2026-Q1"),
        by="rep",
        forecast_config=ForecastConfig(simulations=2000),
    )


def test_base_and_stretch_are_the_configured_quantiles(rep_plan):
    fc = rep_plan.forecast
    labels, draws = fc.unit_draws("rep")
    units = rep_plan.plan.units.set_index("unit")
    np.testing.assert_allclose(units.loc[labels, "base"], np.quantile(draws, 0.5, axis=0))
    np.testing.assert_allclose(units.loc[labels, "stretch"], np.quantile(draws, 0.8, axis=0))
    assert (units["stretch"] >= units["base"]).all()
    plan = recommend_targets(
        fc, by="rep", config=TargetConfig(base_quantile=0.3, stretch_quantile=0.9)
    )
    np.testing.assert_allclose(plan.units["base"], np.quantile(draws, 0.3, axis=0))


def test_top_down_allocation_sums_and_stays_within_reach(rep_plan):
    fc = rep_plan.forecast
    plan0 = recommend_targets(fc, by="rep")
    total = plan0.total["mean"] * 1.1  # ambitious but inside the units' P10..P90 band
    plan = recommend_targets(fc, by="rep", top_down=total)
    u = plan.units
    assert plan.total["allocation_status"] == "ok"
    assert u["allocated"].sum() == pytest.approx(total, rel=1e-9)
    assert (u["allocated"] >= u["p10"] - 1e-6).all() and (u["allocated"] <= u["p90"] + 1e-6).all()
    # Gap against what the pipeline supports, and the chance of making the number.
    assert plan.total["gap"] == pytest.approx(total - plan.total["base"])
    assert 0.0 <= plan.total["p_reach_top_down"] < 0.5
    # Bigger reach, bigger share.
    order = u.sort_values("mean")
    assert order["allocated"].iloc[-1] > order["allocated"].iloc[0]


def test_new_hire_gets_a_ramped_target(rep_plan):
    u = rep_plan.plan.units.set_index("unit")
    new = u[u["new_hire"]]
    assert len(new) == 1
    assert 0 < new["ramp"].iloc[0] < 1
    assert new["tenure_months"].iloc[0] < 6
    assert new["base"].iloc[0] < u.loc[~u["new_hire"], "base"].median()


def test_team_rollup_targets_and_json(small_history):
    rec = recommend(
        small_history,
        parse_period("2026-Q1"),
        by="team",
        top_down=1_000_000,
        forecast_config=ForecastConfig(simulations=1000),
    )
    out = rec.to_dict()
    assert {u["unit"] for u in out["units"]} == {"north", "south"}
    assert sum(u["allocated"] for u in out["units"]) == pytest.approx(1_000_000, abs=0.1)
    for key in ("p10", "p50", "p90", "mean", "base", "stretch", "allocated"):
        assert key in out["units"][0]
    assert out["total"]["top_down"] == 1_000_000
