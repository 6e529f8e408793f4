"""Fit-and-evaluate on synthetic tables: model vs baselines vs oracle, checks, explanations."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from salespilot.training.checks import NotEnoughDataError, single_feature_aucs
from salespilot.training.core import fit_and_evaluate
from tests.training.synthetic import synthetic_frame, synthetic_spec


@pytest.fixture(scope="module")
def evaluation():
    frame = synthetic_frame(6000)
    return fit_and_evaluate(synthetic_spec(), frame, oracle=lambda rows: rows["p_true"].to_numpy())


def test_model_learns_the_signal_and_beats_the_rule(evaluation):
    m, rule, oracle = evaluation.metrics, evaluation.baselines["stage_rule"], evaluation.oracle
    assert m["roc_auc"] > rule["roc_auc"] + 0.08
    assert oracle["roc_auc"] - m["roc_auc"] < 0.04
    assert m["ece"] < 0.05
    assert set(evaluation.baselines) == {"logistic_regression", "stage_rule"}
    assert evaluation.warnings == []


def test_contributions_plus_base_value_equal_raw_score(evaluation):
    rows = evaluation.test.head(200)
    contrib = evaluation.model.contributions(rows)
    assert list(contrib.columns) == [*evaluation.model.features, "base_value"]
    np.testing.assert_allclose(contrib.sum(axis=1), evaluation.model.raw_score(rows), atol=1e-9)


def test_pred_contrib_agrees_with_shap_tree_explainer(evaluation):
    import shap

    rows = evaluation.test.head(100)
    ours = evaluation.model.contributions(rows)
    explainer = shap.TreeExplainer(evaluation.model.booster)
    theirs = explainer.shap_values(evaluation.model.prepare(rows))
    theirs = theirs[1] if isinstance(theirs, list) else theirs
    np.testing.assert_allclose(ours[evaluation.model.features].to_numpy(), theirs, atol=1e-6)


def test_unseen_category_is_scored_as_missing(evaluation):
    rows = evaluation.test.head(3).copy()
    rows["stage"] = rows["stage"].astype(str)
    rows.loc[rows.index[0], "stage"] = "never seen"
    p = evaluation.model.predict_proba(rows)
    assert np.isfinite(p).all()


def test_too_few_positives_is_a_clear_error():
    frame = synthetic_frame(3000)
    frame["label_won"] = 0
    frame.loc[frame.index[:12], "label_won"] = 1
    with pytest.raises(NotEnoughDataError) as err:
        fit_and_evaluate(synthetic_spec(), frame)
    msg = str(err.value)
    assert "train: " in msg and " positive and " in msg
    assert "needs at least 30 of each" in msg


def test_a_leaky_feature_is_named_in_a_warning():
    frame = synthetic_frame(4000, leak=True)
    spec = synthetic_spec().with_features(extra={"loss_reason_code": "numeric"})
    ev = fit_and_evaluate(spec, frame)
    leak = [w for w in ev.warnings if "likely leak" in w]
    assert len(leak) == 1 and "'loss_reason_code'" in leak[0]
    assert any("suspiciously high" in w for w in ev.warnings)


def test_single_feature_auc_of_an_id_like_category_is_not_a_leak():
    frame = synthetic_frame(4000)
    aucs = single_feature_aucs(
        frame, frame["label_won"].to_numpy(), ["opportunity_id"], ["opportunity_id"]
    )
    assert aucs["opportunity_id"] < 0.7


def test_a_customer_field_with_numeric_codes_is_a_usable_category():
    frame = synthetic_frame(3000)
    frame["custom_segment"] = (frame["x1"] > 0).astype(int) + 2 * (frame["x2"] > 0).astype(int)
    spec = synthetic_spec().with_features(extra={"custom_segment": "categorical"})
    ev = fit_and_evaluate(spec, frame)
    assert ev.model.categories["custom_segment"] == ["0", "1", "2", "3"]
    assert ev.model.prepare(ev.test)["custom_segment"].notna().all()
    assert "custom_segment" in ev.model.features


def test_monotone_constraint_holds_for_every_row():
    frame = synthetic_frame(3000)
    ev = fit_and_evaluate(synthetic_spec(monotone={"days_since_last_touch": -1}), frame)
    rows = ev.test.head(100).copy()
    before = ev.model.raw_score(rows)
    rows["days_since_last_touch"] = rows["days_since_last_touch"] + 30
    assert (ev.model.raw_score(rows) <= before + 1e-12).all()


def test_refit_learns_from_training_and_validation_but_never_the_test_period():
    frame = synthetic_frame(3000, seed=3)
    spec = synthetic_spec(refit_on_validation=True)
    ev = fit_and_evaluate(spec, frame)
    split = ev.split
    rows_fit = int(split.train.sum() + split.valid.sum())
    meta = ev.model.metadata
    assert meta["refit_on_validation"] is True
    assert meta["trees"] == round(meta["best_iteration"] * rows_fit / split.train.sum())
    assert meta["trees"] > meta["best_iteration"]
    # flipping every label of the test period leaves the model untouched
    flipped = frame.copy()
    in_test = flipped["as_of"] >= split.test_start
    flipped.loc[in_test, "label_won"] = 1 - flipped.loc[in_test, "label_won"]
    again = fit_and_evaluate(spec, flipped)
    np.testing.assert_allclose(again.model.raw_score(ev.test), ev.model.raw_score(ev.test))
    # without the refit (the default) the model has exactly the early-stopped trees
    plain = fit_and_evaluate(synthetic_spec(), frame)
    assert plain.model.metadata["refit_on_validation"] is False
    assert plain.model.metadata["trees"] == plain.model.metadata["best_iteration"]


def _drifting_frame() -> pd.DataFrame:
    """Deals whose win rate falls from about 50 % to 20 % after the first 200 days: the
    training period is of the old rate, validation and test of the new."""
    frame = synthetic_frame(3000, seed=3)
    late = (frame["as_of"] - frame["as_of"].min()).dt.days > 200
    logit = np.log(frame["p_true"] / (1 - frame["p_true"])) + np.where(late, -1.0, 1.0)
    frame["p_true"] = 1 / (1 + np.exp(-logit))
    draw = np.random.default_rng(103).random(len(frame))
    frame["label_won"] = (draw < frame["p_true"]).astype(int)
    return frame


def test_the_calibrator_maps_the_scores_of_the_booster_it_is_served_with():
    frame = _drifting_frame()
    served = fit_and_evaluate(synthetic_spec(), frame)
    refit = fit_and_evaluate(synthetic_spec(refit_on_validation=True), frame)
    rate = served.y_test.mean()
    assert frame["label_won"][served.split.train].mean() > 0.45 and 0.15 < rate < 0.25
    for ev in (served, refit):  # the test period's mean prediction is its win rate
        assert abs(ev.p_test.mean() - rate) < 0.015
        assert ev.metrics["ece"] < 0.03
    # the calibrator of the training-period booster, reused on the refitted booster (whose
    # scores sit lower: it has learned the new rate), undershoots the rate
    reused = served.model.calibrator.predict(refit.model.raw_score(served.test))
    assert rate - reused.mean() > 0.04


def test_a_leaf_size_tuned_for_big_histories_still_learns_on_a_small_one():
    # min_data_in_leaf=300 on ~400 training rows would forbid every split: a constant model
    frame = synthetic_frame(900, seed=5)
    ev = fit_and_evaluate(synthetic_spec().with_params(min_data_in_leaf=300), frame)
    assert ev.split.describe()["train_rows"] < 600
    assert ev.model.metadata["best_iteration"] > 1
    assert ev.metrics["roc_auc"] > ev.baselines["stage_rule"]["roc_auc"]


def test_after_the_fact_fields_are_named_for_review():
    frame = synthetic_frame(4000, seed=1)
    rng = np.random.default_rng(2)
    won = frame["label_won"].to_numpy() == 1
    # a follow-up rating filled in mostly for won deals: its missingness gives the outcome away
    filled = np.where(won, rng.random(len(frame)) < 0.8, rng.random(len(frame)) < 0.03)
    frame["followup_rating"] = np.where(filled, rng.integers(1, 6, len(frame)), np.nan)
    # a call duration known only afterwards: ranks the outcome well, but not above 0.95
    frame["call_duration"] = won * 1.6 + rng.normal(size=len(frame))
    spec = synthetic_spec().with_features(
        extra={"followup_rating": "numeric", "call_duration": "numeric"}
    )
    ev = fit_and_evaluate(spec, frame)
    assert {"followup_rating", "call_duration"} <= set(ev.leak_review)
    by_name = {f: [w for w in ev.warnings if f"review feature {f!r}" in w] for f in ev.leak_review}
    assert "missing alone separates" in by_name["followup_rating"][0]
    assert "alone ranks label_won" in by_name["call_duration"][0]
    assert not [w for w in ev.warnings if "likely leak" in w]  # below the error level
    from salespilot.training.tracking import readiness_tags

    assert {"followup_rating", "call_duration"} <= set(
        json.loads(readiness_tags(ev)["leak_review"])
    )


def test_a_field_missing_only_on_deals_that_never_closed_is_named():
    """The Maven mapping's placeholder accounts: only never-closed deals lack one, so the
    account's fields are missing exactly there - a hint from the future, named for review."""
    from salespilot.training.checks import missing_only_unclosed

    rng = np.random.default_rng(0)
    n = 200
    never_closed = np.arange(n) < 60
    frame = pd.DataFrame(
        {
            "label_outcome_won": np.where(never_closed, np.nan, rng.integers(0, 2, n)),
            "account_revenue": np.where(never_closed & (np.arange(n) < 50), np.nan, 1.0),
            "x2": np.where(rng.random(n) < 0.3, np.nan, 1.0),  # missing at random: not named
        }
    )
    spec = synthetic_spec(extra={"outcome_label": "label_outcome_won"})
    found = missing_only_unclosed(spec, frame, ["account_revenue", "x2"])
    assert list(found) == ["account_revenue"]
    assert "never closed (50 training rows, 0% of them closed" in found["account_revenue"]
    assert "placeholder" in found["account_revenue"]
    # without the eventual outcome there is nothing to check against
    assert missing_only_unclosed(synthetic_spec(), frame, ["account_revenue"]) == {}


def test_a_rule_with_no_data_to_stand_on_is_left_out_and_said_to_be():
    """Every deal in the same stage (an export without stage history): the stage rule would
    score every row alike - a constant 0.5 that reads like a baseline. It is left out."""
    from salespilot.training.core import summary

    frame = synthetic_frame(1500, seed=4)
    frame["stage"] = pd.Categorical(["engaging"] * len(frame))
    ev = fit_and_evaluate(synthetic_spec(), frame)
    assert set(ev.baselines) == {"logistic_regression"}
    why = summary(ev)["baselines_left_out"]["stage_rule"]
    assert "same 'stage' ('engaging')" in why and "left out" in why
    assert (
        summary(fit_and_evaluate(synthetic_spec(), synthetic_frame(1500)))["baselines_left_out"]
        == {}
    )


def test_not_enough_data_says_where_the_rows_went():
    """The error carries the row accounting: each period's rows and what was left out."""
    frame = synthetic_frame(3000)
    frame["label_won"] = 0
    frame.loc[frame.index[:12], "label_won"] = 1
    frame.loc[frame.index[-100:], "label_won"] = np.nan  # the unlabelled end
    with pytest.raises(NotEnoughDataError) as err:
        fit_and_evaluate(synthetic_spec(), frame)
    msg = str(err.value)
    ev_rows = frame["label_won"].notna().sum()
    assert f"Rows of {len(frame):,} candidates: used in train " in msg, msg
    assert "validation " in msg and "test " in msg
    assert "left out: unlabelled end 100 (" in msg, msg
    assert "embargo " in msg and ev_rows < len(frame)
