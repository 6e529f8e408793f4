"""Code tests of the split, the calibration and the explanations (synthetic data, known signal)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import NotFittedError

from salespilot.training.evaluate import binary_metrics, expected_calibration_error, top_decile
from salespilot.training.fit import Calibrator, _train_params, choose_calibration, leaf_size
from salespilot.training.split import SplitError, time_split
from tests.training.synthetic import synthetic_frame


def test_split_periods_never_overlap_in_time_or_label_window():
    frame = synthetic_frame(3000)
    horizon = 21
    s = time_split(frame["as_of"], horizon_days=horizon)
    t = frame["as_of"]
    gap = pd.Timedelta(days=horizon)
    assert s.train.sum() and s.valid.sum() and s.test.sum()
    assert (
        not (s.train & s.valid).any()
        and not (s.valid & s.test).any()
        and not (s.train & s.test).any()
    )
    # every training label window closes before validation starts; same for validation vs test
    assert t[s.train].max() + gap < t[s.valid].min()
    assert t[s.valid].max() + gap < t[s.test].min()
    # the test period is the latest one
    assert t[s.test].max() == t.max()


def test_split_refuses_history_shorter_than_two_horizons():
    times = pd.Series(pd.date_range("2025-01-01", periods=10, freq="7D"))
    with pytest.raises(SplitError, match="two label horizons"):
        time_split(times, horizon_days=60)


def test_calibration_fixes_an_overconfident_score():
    rng = np.random.default_rng(1)
    logit = rng.normal(scale=1.5, size=8000)
    y = (rng.random(8000) < 1 / (1 + np.exp(-logit))).astype(int)
    raw = 3.0 * logit + 1.0  # overconfident and shifted: badly calibrated
    fit, held = slice(0, 4000), slice(4000, None)
    method, losses = choose_calibration(raw[fit], y[fit])
    assert method != "none"
    assert losses[method] < losses["none"]
    cal = Calibrator(method).fit(raw[fit], y[fit])
    before = expected_calibration_error(
        y[held], Calibrator("none").fit(raw[fit], y[fit]).predict(raw[held])
    )
    after = expected_calibration_error(y[held], cal.predict(raw[held]))
    assert before > 0.08
    assert after < 0.03


@pytest.mark.parametrize("method", ["none", "sigmoid", "isotonic"])
def test_calibrator_predict_before_fit_raises_not_fitted(method):
    with pytest.raises(NotFittedError):
        Calibrator(method).predict(np.zeros(3))


def test_calibration_keeps_a_calibrated_score_as_is():
    rng = np.random.default_rng(2)
    logit = rng.normal(scale=1.5, size=4000)
    y = (rng.random(4000) < 1 / (1 + np.exp(-logit))).astype(int)
    method, _ = choose_calibration(logit, y)
    assert method in ("none", "sigmoid")


def test_metrics_on_a_hand_made_example():
    y = np.array([0] * 90 + [1] * 10)
    p = np.r_[np.full(90, 0.05), np.full(10, 0.95)]
    m = binary_metrics(y, p)
    assert m["roc_auc"] == 1.0 and m["average_precision"] == 1.0
    assert m["top_decile_lift"] == pytest.approx(10.0)
    assert m["top_decile_capture"] == pytest.approx(1.0)
    assert m["ece"] == pytest.approx(0.05)
    assert top_decile(np.array([1, 0, 0, 0]), np.array([0.9, 0.1, 0.2, 0.3])) == (4.0, 1.0)


def test_slot_metrics_on_a_hand_made_profile():
    from salespilot.training.evaluate import slot_metrics

    rows = []
    for weekday in range(5):
        for hour in (9, 10, 11):
            rows.append(("C1", weekday, hour, 0.2 if hour == 9 else 0.1))
            rows.append(("C2", weekday, hour, 0.3 if (weekday, hour) == (2, 11) else 0.1))
    profile = pd.DataFrame(rows, columns=["contact_id", "weekday", "hour", "p_connect_call"])
    rec = pd.DataFrame({"contact_id": ["C1", "C2"], "weekday": [0, 0], "hour": [9, 9]})
    usual = pd.DataFrame({"contact_id": ["C1", "C2"], "hour": [10, 10]})
    m = slot_metrics(rec, usual, profile)
    assert m["slot_regret"] == pytest.approx((0.0 + 0.2) / 2)
    assert m["slot_share_of_best"] == pytest.approx(0.3 / 0.5)
    assert m["slot_lift_vs_usual_hour"] == pytest.approx(0.3 / 0.2)


def test_logistic_regression_baseline_is_seeded():
    # above 10,000 rows the quantile transform subsamples: identical runs must still agree
    from salespilot.training.baselines import logistic_regression
    from tests.training.synthetic import synthetic_frame, synthetic_spec

    frame = synthetic_frame(12000, seed=4)
    spec = synthetic_spec()
    y = frame["label_won"].to_numpy()
    first = logistic_regression(spec, frame, y, frame.head(500))
    again = logistic_regression(spec, frame, y, frame.head(500))
    np.testing.assert_array_equal(first, again)


def test_logistic_baseline_learns_from_a_seeded_sample_of_each_class():
    from salespilot.training.baselines import LOGISTIC_MAX_ROWS, baseline_sample

    assert list(baseline_sample(np.array([0, 1, 0]))) == [0, 1, 2]  # small: every row
    y = np.zeros(4 * LOGISTIC_MAX_ROWS, dtype=int)
    y[::400] = 1  # a rare class: 50 positives
    rows = baseline_sample(y)
    assert abs(len(rows) - LOGISTIC_MAX_ROWS) <= 1 and np.all(np.diff(rows) > 0)
    assert y[rows].sum() == round(LOGISTIC_MAX_ROWS * y.mean())  # each class in its share
    np.testing.assert_array_equal(rows, baseline_sample(y))  # seeded
    only_one = np.zeros(2 * LOGISTIC_MAX_ROWS, dtype=int)
    only_one[0] = 1
    assert only_one[baseline_sample(only_one)].sum() == 1  # never a class left out


def test_leaf_sizes_scale_with_the_positives():
    # plenty of both classes: the spec's own leaf size
    assert leaf_size(100, n_rows=40_000, n_minority=10_000) == 100
    # 40 positives in 400 rows: about 10 positives a leaf, not the 40 rows of the row cap
    assert leaf_size(100, n_rows=400, n_minority=40) == 100
    assert leaf_size(20, n_rows=400, n_minority=40) == 100
    # 40 positives in 4,000 rows: leaves of 1,000 rows, at most four of them
    assert leaf_size(20, n_rows=4_000, n_minority=40) == 1_000
    # a large leaf size on a small set is capped at 10 % of the rows, one split always possible
    assert leaf_size(300, n_rows=500, n_minority=200) == 50
    assert leaf_size(100, n_rows=100, n_minority=2) == 50


def test_training_params_derive_the_leaf_size_from_the_training_labels():
    y = np.r_[np.ones(40), np.zeros(360)]
    params = _train_params({"min_data_in_leaf": 20}, ["x"], None, y)
    assert params["min_data_in_leaf"] == 100
    # an alias given later (``--params min_child_samples=...``) is the one used, once
    params = _train_params({"min_data_in_leaf": 20, "min_child_samples": 300}, ["x"], None, y)
    assert params["min_data_in_leaf"] == 100 and "min_child_samples" not in params
    y = np.r_[np.ones(4000), np.zeros(6000)]
    params = _train_params({"min_data_in_leaf": 20, "min_child_samples": 300}, ["x"], None, y)
    assert params["min_data_in_leaf"] == 300


@pytest.mark.parametrize("method", ["sigmoid", "isotonic"])
def test_calibrator_plain_parameters_predict_as_the_scikit_learn_estimator(method):
    """The calibrator keeps plain numbers and predicts with NumPy: the same probabilities as the
    scikit-learn estimator it was fitted with, inside and outside the fitted range, also after a
    JSON round trip (how a saved model carries it)."""
    from sklearn.isotonic import IsotonicRegression
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(3)
    raw = rng.normal(scale=2.0, size=3000)
    y = (rng.random(3000) < 1 / (1 + np.exp(-(0.6 * raw - 0.4)))).astype(int)
    if method == "sigmoid":
        est = LogisticRegression(C=1e4).fit(raw.reshape(-1, 1), y)
        expected = lambda x: est.predict_proba(x.reshape(-1, 1))[:, 1]  # noqa: E731
    else:
        est = IsotonicRegression(out_of_bounds="clip", y_min=1e-4, y_max=1 - 1e-4).fit(raw, y)
        expected = est.predict
    cal = Calibrator(method).fit(raw, y)
    new = np.concatenate([rng.normal(scale=3.0, size=2000), [-50.0, 50.0]])
    want = np.clip(expected(new), 1e-4, 1 - 1e-4)
    np.testing.assert_allclose(cal.predict(new), want, rtol=0, atol=1e-12)
    saved = json.loads(json.dumps(cal.to_json(), default=lambda a: a.tolist()))
    np.testing.assert_allclose(Calibrator.from_json(saved).predict(new), want, rtol=0, atol=1e-12)
