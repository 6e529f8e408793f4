"""The shared ``trained_state`` fixture: three champions on the small demo, loadable and sane.

Quality bars here are looser versions of bench/quality.py's (small history, fast settings).
"""

from __future__ import annotations

import numpy as np
import pytest

from salespilot.features.loader import load_history
from salespilot.models import SPECS
from salespilot.training import compare, load_model
from salespilot.training.train import build_dataset


@pytest.mark.parametrize("name", list(SPECS))
def test_each_model_has_a_loadable_champion(trained_state, demo_history_dir, name):
    m = load_model(name, settings=trained_state)
    assert m.version == "1" and m.alias == "champion"
    assert set(m.readable_names) == set(m.features)
    spec = SPECS[name]
    rows = build_dataset(spec, load_history(demo_history_dir)).tail(50)
    p = m.predict_proba(rows)
    assert ((p > 0) & (p < 1)).all()
    contrib = m.contributions(rows)
    np.testing.assert_allclose(contrib.sum(axis=1), m.raw_score(rows), atol=1e-9)
    assert {"roc_auc", "ece", "top_decile_lift"} <= set(m.metrics)


def test_win_probability_beats_the_stage_rule_and_nears_the_oracle(trained_state):
    v = compare("win_probability", settings=trained_state)[0]
    auc = v["metrics"]["roc_auc"]
    assert auc > v["baselines"]["stage_rule"]["roc_auc"]
    # the oracle is the exact "won within the horizon" probability; the small history leaves
    # a few months to learn from, so the bar is looser than bench/quality.py's 0.02
    assert v["oracle"]["roc_auc"] - auc < 0.10


def test_churn_is_judged_against_its_rule_and_the_oracle(trained_state):
    # 12 months minus a 90-day horizon and two 90-day embargoes leaves ~3 months to learn from:
    # too little to beat the rule here; bench/quality.py measures churn on 24 months.
    v = compare("churn_risk", settings=trained_state)[0]
    assert {"roc_auc", "ece"} <= set(v["baselines"]["days_since_contact_rule"])
    assert v["oracle"]["roc_auc"] > 0.6  # the hazard in force at as_of is informative
    assert 0.0 < v["metrics"]["ece"] < 0.1


def test_contact_time_reports_slot_quality(trained_state):
    v = compare("contact_time", settings=trained_state)[0]
    assert {"slot_regret", "slot_lift_vs_usual_hour"} <= set(v["metrics"])
    assert v["metrics"]["slot_lift_vs_usual_hour"] > 1.0


def test_readiness_verdicts_on_the_small_demo(trained_state):
    win = compare("win_probability", settings=trained_state)[0]
    assert win["readiness"]["verdict"] == "ready", win["readiness"]
    # the demo's deals differ in more than timing: won against lost among the closed test
    # deals is clearly above the deal's age alone
    wl = win["readiness"]["won_vs_lost"]
    assert wl["auc"] > 0.7 and wl["gain_interval"][0] > 0.1, wl
    # 12 months leave ~420 churn test rows: the AUC's interval includes 0.5, so the automatic
    # rule did not promote it (the fixture promoted it by hand; the tag keeps the verdict)
    churn = compare("churn_risk", settings=trained_state)[0]
    assert churn["readiness"]["verdict"] == "not_ready"
    assert any("chance" in r for r in churn["readiness"]["reasons"])
    assert churn["reason"] == "promoted by hand"


def test_the_champion_scorer_says_which_model_and_horizon_its_p_win_comes_from(
    trained_state, demo_history
):
    """The targets' p_win from the champion is a :class:`Scorer` naming the model's version,
    horizon and features, not a function carrying attributes."""
    import pandas as pd

    from salespilot.targets.modelled import Scorer
    from salespilot.targets.service import champion_scorer

    model = load_model("win_probability", settings=trained_state)
    scorer = champion_scorer(trained_state)
    assert isinstance(scorer, Scorer)
    assert (scorer.version, scorer.source) == (model.version, f"champion v{model.version}")
    assert scorer.horizon_days == model.metadata["horizon_days"]
    assert scorer.features == tuple(model.features)
    p = scorer.predict(demo_history, pd.Timestamp("2026-06-01"))
    assert list(p.columns) == ["opportunity_id", "p_win"] and len(p) > 0
    assert p["p_win"].between(0, 1).all()
