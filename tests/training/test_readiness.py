"""The readiness verdict: a model without signal is not_ready and never promoted automatically."""

from __future__ import annotations

import numpy as np

from salespilot.settings import Settings
from salespilot.training import compare, train_model
from salespilot.training.readiness import bootstrap_auc_interval, judge
from tests.training.synthetic import synthetic_frame, synthetic_spec


def test_no_signal_is_not_ready_and_not_promoted(tmp_path):
    frame = synthetic_frame(3000, seed=3)
    rng = np.random.default_rng(5)
    frame["label_won"] = (rng.random(len(frame)) < 0.3).astype(int)  # nothing predicts it
    settings = Settings(state_dir=tmp_path)
    result = train_model(synthetic_spec(), None, settings, frame=frame, figures=False)
    ready = result.to_json()["readiness"]
    assert ready["verdict"] == "not_ready"
    assert any("chance" in r for r in ready["reasons"]), ready
    assert not result.champion
    assert "not ready" in result.reason and "What would help" in result.reason
    (v,) = compare("synthetic_win", settings=settings)
    assert v["aliases"] == ["challenger"]
    assert v["readiness"] == {"verdict": "not_ready", "reasons": ready["reasons"]}
    assert v["leak_review"] == result.evaluation.leak_review


def test_judge_rules():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 2000)
    good = y + rng.normal(scale=0.8, size=len(y))
    assert judge(y_test=y, p_test=good, baseline_auc=0.6, error_leaks=[]).verdict == "ready"
    # a good model that loses to the logistic regression on the same rows
    lost = judge(y_test=y, p_test=good, baseline_auc=0.99, error_leaks=[])
    assert lost.verdict == "not_ready" and "logistic regression" in lost.reasons[0]
    leak = judge(y_test=y, p_test=good, baseline_auc=0.6, error_leaks=["feature 'x' leaks"])
    assert leak.verdict == "not_ready" and "'x'" in leak.reasons[-1]
    weak = y + rng.normal(scale=6.0, size=len(y))
    assert judge(y_test=y, p_test=weak, baseline_auc=0.5, error_leaks=[]).verdict == "usable"
    few = judge(y_test=y[:30], p_test=good[:30], baseline_auc=0.5, error_leaks=[])
    assert few.verdict == "not_ready" and "too few" in few.reasons[0]
    # seeded: the same interval every time
    assert bootstrap_auc_interval(y, weak) == bootstrap_auc_interval(y, weak)
