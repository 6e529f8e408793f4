"""The readiness verdict: a model without signal is not_ready and never promoted automatically."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from salespilot.settings import Settings
from salespilot.training import compare, train_model
from salespilot.training.evaluate import roc_auc
from salespilot.training.readiness import (
    bootstrap_auc_difference_interval,
    bootstrap_auc_interval,
    judge,
    won_vs_lost,
)
from tests.training.synthetic import (
    synthetic_frame,
    synthetic_spec,
    timing_only_frame,
    timing_spec,
)


def test_no_signal_is_not_ready_and_not_promoted(tmp_path, mlflow_template):
    frame = synthetic_frame(3000, seed=3)
    rng = np.random.default_rng(5)
    frame["label_won"] = (rng.random(len(frame)) < 0.3).astype(int)  # nothing predicts it
    settings = Settings(state_dir=mlflow_template(tmp_path))
    result = train_model(synthetic_spec(), None, settings, frame=frame, figures=False)
    ready = result.to_json()["readiness"]
    assert ready["verdict"] == "not_ready"
    assert any("chance" in r for r in ready["reasons"]), ready
    assert not result.champion
    assert "not ready" in result.reason and "What would help" in result.reason
    (v,) = compare("synthetic_win", settings=settings)
    assert v["aliases"] == ["challenger"]
    assert v["readiness"] == {
        "verdict": "not_ready",
        "reasons": ready["reasons"],
        "won_vs_lost": None,  # the synthetic spec has no won-against-lost check
    }
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


def test_a_model_that_learns_only_timing_is_not_ready(tmp_path, mlflow_template):
    """It ranks "won within the horizon" well (it knows which deals close soon), but among the
    deals that closed it tells won from lost no better than the deal's age: not_ready."""
    settings = Settings(state_dir=mlflow_template(tmp_path))
    result = train_model(timing_spec(), None, settings, frame=timing_only_frame(), figures=False)
    ready = result.to_json()["readiness"]
    assert result.evaluation.metrics["roc_auc"] > 0.65  # timing alone looks like a good model
    assert ready["verdict"] == "not_ready"
    w = ready["won_vs_lost"]
    assert w["won"] >= 20 and w["lost"] >= 20
    assert abs(w["auc"] - 0.5) < 0.1 and abs(w["age_baseline_auc"] - 0.5) < 0.1
    assert w["gain_interval"][0] <= 0 <= w["gain_interval"][1]
    assert any("no better than the deal's age" in r for r in ready["reasons"]), ready
    assert "closed deals, won and lost" in ready["help"]
    assert not result.champion
    (v,) = compare("synthetic_win", settings=settings)
    assert v["readiness"]["won_vs_lost"] == w  # on the version's tags, read back by compare


def test_won_vs_lost_check_rules():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 600)
    signal = y + rng.normal(scale=0.7, size=len(y))
    age = rng.normal(size=len(y))
    w = won_vs_lost(y, signal, age)
    assert w.judged and not w.within_noise and w.gain_interval[0] > 0
    # the same interval as the AUC's own bootstrap: one definition, same resamples
    assert w.interval == bootstrap_auc_interval(y, signal)
    assert won_vs_lost(y, age, age).within_noise
    few = won_vs_lost(y[:30], signal[:30], age[:30])
    assert not few.judged and not few.within_noise and few.gain_interval is None
    ok = judge(y_test=y, p_test=signal, baseline_auc=0.6, error_leaks=[], won_lost=few)
    assert ok.verdict == "ready" and "not judged" in ok.reasons[-1]


def _naive_interval(y, p, p_other=None, *, resamples=200, seed=0, level=0.90):
    """The reference: scikit-learn's ROC AUC on each resample drawn row by row."""
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(resamples):
        idx = rng.integers(0, len(y), len(y))
        if y[idx].min() == y[idx].max():
            continue
        v = roc_auc_score(y[idx], p[idx])
        values.append(v if p_other is None else v - roc_auc_score(y[idx], p_other[idx]))
    tail = (1 - level) / 2 * 100
    return tuple(np.percentile(values, [tail, 100 - tail]))


def test_bootstrap_intervals_and_auc_match_scikit_learn_with_ties():
    rng = np.random.default_rng(4)
    for n in (25, 400):  # 25 rows: some resamples hold one class and are skipped
        y = (rng.random(n) < 0.2).astype(int)
        p = np.round(rng.random(n) + 0.4 * y, 1)  # rounded: many ties, across classes too
        other = np.round(rng.random(n), 2)
        np.testing.assert_allclose(bootstrap_auc_interval(y, p), _naive_interval(y, p), atol=1e-12)
        np.testing.assert_allclose(
            bootstrap_auc_difference_interval(y, p, other),
            _naive_interval(y, p, other),
            atol=1e-12,
        )
        assert abs(roc_auc(y, p) - roc_auc_score(y, p)) < 1e-12
    assert np.isnan(roc_auc(np.ones(5), np.arange(5.0)))


def test_the_bootstrap_resamples_entities_not_rows():
    """A deal's weekly rows share its outcome: ten copies of each row are one draw, so the
    interval is the one-row-per-deal interval, not one ten times too confident."""
    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, 300)
    p = y + rng.normal(scale=1.5, size=len(y))
    deal = np.repeat(np.arange(len(y)).astype(str), 10)
    y10, p10 = np.repeat(y, 10), np.repeat(p, 10)
    one = bootstrap_auc_interval(y, p)
    by_deal = bootstrap_auc_interval(y10, p10, groups=deal)
    by_row = bootstrap_auc_interval(y10, p10)
    assert by_deal == pytest.approx(one, abs=1e-12)
    assert by_row[1] - by_row[0] < 0.5 * (one[1] - one[0])  # rows: far too narrow
    # the verdict and the won-against-lost check draw the same clusters
    verdict = judge(y_test=y10, p_test=p10, baseline_auc=0.5, error_leaks=[], groups=deal)
    assert verdict.roc_auc_interval == pytest.approx(one, abs=1e-12)
    w = won_vs_lost(y10, p10, rng.normal(size=len(y10)), groups=deal)
    assert w.interval == pytest.approx(one, abs=1e-12)
