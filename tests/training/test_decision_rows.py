"""Decision-time rows: a flat export's entity scored once at its decision time, split by it."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from salespilot.features import training_sets
from salespilot.training.split import SplitError, decision_split


def test_decision_split_cuts_by_decision_order_and_embargoes_only_overlapping_labels():
    t = pd.Series(pd.date_range("2025-01-01", periods=100, freq="D"))
    resolved = t + pd.Timedelta(days=1)
    accounts = pd.Series([f"a{i}" for i in range(100)])
    resolved[[50, 55]] = t[99]  # still unresolved when the test period starts
    accounts[55] = accounts[90]  # ... and row 55's account has a test row: its label overlaps
    resolved[79], accounts[79] = t[85], accounts[85]
    s = decision_split(t, resolved, groups=accounts)
    assert s.test.sum() == 20 and s.test[80:].all()  # the latest 20 % of decisions
    assert s.valid[60:79].all() and not s.valid[79]  # its account's later call overlaps
    assert s.train[:60].sum() == 59 and not s.train[55] and s.train[50]
    assert s.embargo_days == pytest.approx(5.0)  # row 55: 5 days before the validation cut
    # without accounts each row is its own: nothing overlaps, nothing is left out
    assert decision_split(t, resolved).train[:60].all()
    with pytest.raises(SplitError, match="too few rows"):
        decision_split(t[:2], resolved[:2])


def test_decisions_at_one_instant_are_split_as_a_cross_section():
    """A churn snapshot: every customer at one date, each label known 30 days later."""
    t = pd.Series([pd.Timestamp("2026-05-31")] * 100)
    s = decision_split(t, t + pd.Timedelta(days=30))
    assert (s.train.sum(), s.valid.sum(), s.test.sum()) == (60, 20, 20)
    assert not (s.train & s.test).any() and not (s.valid & s.test).any()
    again = decision_split(t, t + pd.Timedelta(days=30))
    assert (again.test == s.test).all()  # seeded: identical runs cut identically
    # and the run says so: its test rows are no later than its training rows
    assert s.cut_ties == {"validation": 100, "test": 100}
    assert s.describe()["test_cut_ties"] == 100
    said = s.cut_ties_warning("churn_risk")
    assert "every decision is at one instant (2026-05-31)" in said and "100 rows" in said
    # a cut through one busy day only: that day's decisions are drawn, the rest ordered
    days = pd.Series(pd.date_range("2026-01-01", periods=70, freq="D"))  # to 11 March
    busy = pd.concat([days, pd.Series([pd.Timestamp("2026-03-12")] * 30)], ignore_index=True)
    part = decision_split(busy, busy)  # the test period: 20 of the 30 at 12 March
    assert part.cut_ties == {"test": 30}
    assert "the test cut falls among 30 decisions at 2026-03-12" in part.cut_ties_warning("m")
    assert decision_split(days, days).cut_ties_warning("m") is None  # a time order: nothing


def test_win_model_on_decision_rows_has_one_row_per_deal(demo_history):
    from salespilot.models import SPECS
    from salespilot.training.core import fit_and_evaluate
    from salespilot.training.train import build_dataset, check_tables

    spec = dataclasses.replace(
        SPECS["win_probability"], rows="decision", horizon_days=120, num_boost_round=60
    )
    check_tables(spec, demo_history)
    frame = build_dataset(spec, demo_history)
    assert len(frame) == len(demo_history.opportunities)
    assert frame["opportunity_id"].is_unique
    created = demo_history.opportunities.set_index("opportunity_id")["created_at"]
    assert (frame["as_of"].to_numpy() == created.loc[frame["opportunity_id"]].to_numpy()).all()
    assert (frame["deal_age_days"] == 0).all()
    assert (frame["resolved_at"] >= frame["as_of"]).all()
    ev = fit_and_evaluate(spec, frame)
    labelled = int(frame[spec.label].notna().sum())
    assert ev.split.test.sum() == pytest.approx(0.2 * labelled, abs=2)
    assert 0.5 < ev.metrics["roc_auc"] <= 1.0


def test_same_day_decisions_train_on_decision_rows(demo_history):
    """Every deal decided within hours of its creation: never open at a weekly snapshot, so
    the grid has no row, while decision-time rows keep one per deal."""
    opps = demo_history.opportunities.copy()
    closed = opps["status"] != "open"
    opps.loc[closed, "closed_at"] = opps.loc[closed, "created_at"] + pd.Timedelta(hours=1)
    history = dataclasses.replace(demo_history, opportunities=opps)
    assert "weekly snapshot" in (training_sets.outcome_gap(history, "deals") or "")
    assert training_sets.outcome_gap(history, "deals", decision_rows=True) is None
    frame = training_sets.build_decision_set(history, "deals", 30)
    labels = frame["label_won"].dropna()
    assert len(labels) > 0.8 * len(frame) and set(np.unique(labels)) == {0.0, 1.0}


def test_calls_are_decision_rows_at_their_start_without_a_warm_up(demo_history):
    grid = training_sets.build_training_set(demo_history, "attempts", horizon_days=1)
    frame = training_sets.build_decision_set(demo_history, "attempts", 1)
    assert frame["activity_id"].is_unique and len(frame) > len(grid)  # no 60-day warm-up cut
    first = demo_history.opportunities["created_at"].min()
    assert frame["as_of"].min() < first + pd.Timedelta(days=training_sets.DEFAULT_WARMUP_DAYS)
    assert (frame["resolved_at"] == frame["as_of"] + pd.Timedelta(days=1)).all()


def test_customers_at_the_snapshot_date(demo_history):
    """A churn snapshot: each active customer once, as of the observed end minus the horizon."""
    from salespilot.features.pit import observed_end

    frame = training_sets.build_decision_set(demo_history, "accounts", 30)
    snapshot = observed_end(demo_history) - pd.Timedelta(days=30)
    assert frame["account_id"].is_unique and (frame["as_of"] == snapshot).all()
    same = training_sets.build_training_set(demo_history, "accounts", [snapshot], 30)
    assert frame["label_churned"].tolist() == same["label_churned"].tolist()
    assert frame["label_churned"].notna().all() and frame["label_churned"].sum() > 0
    # each customer at its own date (an accounts column)
    accounts = demo_history.accounts.assign(snapshot_at=snapshot - pd.Timedelta(days=60))
    history = dataclasses.replace(demo_history, accounts=accounts)
    own = training_sets.build_decision_set(history, "accounts", 30, at="snapshot_at")
    assert (own["as_of"] == snapshot - pd.Timedelta(days=60)).all() and len(own) > 0


def test_the_mapping_chooses_decision_rows_for_training(tmp_path, demo_history_dir):
    from salespilot.features.loader import load_history
    from salespilot.features.mapping import MappingError, parse_mapping
    from salespilot.features.model_rows import RowChoice, read_model_rows, write_model_rows
    from salespilot.models import SPECS
    from salespilot.training.train import spec_for_history

    tables = {t: {"source": f"{t}.csv"} for t in ("reps", "accounts", "opportunities")}
    mapping = parse_mapping({"tables": tables, "models": {"win_probability": {"rows": "decision"}}})
    assert mapping.models["win_probability"].rows == "decision"
    with pytest.raises(MappingError, match="did you mean 'churn_risk'"):
        parse_mapping({"tables": tables, "models": {"churn": {"rows": "decision"}}})

    write_model_rows(tmp_path, {"churn_risk": RowChoice("decision", "snapshot")})
    assert read_model_rows(tmp_path) == {"churn_risk": RowChoice("decision", "snapshot")}
    history = load_history(demo_history_dir)
    history = dataclasses.replace(history, source=tmp_path)
    spec = spec_for_history(SPECS["churn_risk"], history)
    assert (spec.rows, spec.decision_at) == ("decision", "snapshot")
    assert spec_for_history(SPECS["win_probability"], history).rows == "grid"


def _two_field_spec(rows: str):
    from salespilot.models import SPECS

    return dataclasses.replace(
        SPECS["win_probability"],
        features=("a", "b"),
        categorical=(),
        readable_names={"a": "field a", "b": "field b"},
        monotone={},
        rows=rows,
        num_boost_round=80,
        params={**SPECS["win_probability"].params, "num_leaves": 7, "min_data_in_leaf": 20},
    )


def _two_field_rows(n: int, seed: int, *, interaction: bool) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=n), rng.normal(size=n)
    # additive: each field adds to the odds alone; interaction: only their product ranks
    logit = a * b * 2.5 if interaction else 0.6 * a + 0.4 * b
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(float)
    return pd.DataFrame({"a": a, "b": b}), y


@pytest.mark.parametrize("interaction", [False, True])
def test_decision_rows_keep_the_trees_that_rank_the_validation_period_better(interaction):
    """A decision-row model grows one-split trees beside the spec's and keeps the one whose
    validation ROC AUC is higher: on a few thousand rows of two additive fields the one-split
    trees (the spec's deeper trees fit noise), on a pure interaction the spec's. Grid rows
    always keep the spec's trees."""
    from salespilot.training.core import ADDITIVE_LEAVES, _fit_chosen_trees

    train, y_train = _two_field_rows(1500, 1, interaction=interaction)
    valid, y_valid = _two_field_rows(600, 2, interaction=interaction)
    chosen, booster, _ = _fit_chosen_trees(
        _two_field_spec("decision"), train, y_train, valid, y_valid, client=None
    )
    leaves = booster.dump_model()["tree_info"][0]["num_leaves"]
    if interaction:
        assert chosen.params["num_leaves"] == 7 and leaves > ADDITIVE_LEAVES
        assert "extra_trees" not in chosen.params
    else:
        assert chosen.params["num_leaves"] == ADDITIVE_LEAVES == leaves
        # each split at a random threshold: the trees on `a` split it at (nearly) as many
        # places as there are such trees, where the best threshold repeats
        thresholds = [
            t["tree_structure"]["threshold"]
            for t in booster.dump_model()["tree_info"]
            if t["tree_structure"].get("split_feature") == 0
        ]
        assert chosen.params["extra_trees"] is True
        assert len(thresholds) > 10 and len(set(thresholds)) > 0.8 * len(thresholds)
    if not interaction:  # --params extra_trees=false: the best threshold of each split
        spec = _two_field_spec("decision").with_params(extra_tree=False)
        chosen, booster, _ = _fit_chosen_trees(spec, train, y_train, valid, y_valid, client=None)
        assert chosen.params["num_leaves"] == ADDITIVE_LEAVES
        assert chosen.params["extra_trees"] is False
    grid, grid_booster, _ = _fit_chosen_trees(
        _two_field_spec("grid"), train, y_train, valid, y_valid, client=None
    )
    assert grid.params["num_leaves"] == 7
    assert grid_booster.dump_model()["tree_info"][0]["num_leaves"] > ADDITIVE_LEAVES


def test_deals_decided_at_their_own_time_keep_their_labels_to_the_end(demo_history):
    """A call list: each call connects or not as it starts (closed at its created_at). Every
    label is known at once, so the history's end cuts none off, whatever the horizon; with one
    deal that took time, the latest horizon is unlabelled again (the quick outcomes alone
    would bias the end). With no label known at all the message says what would help."""
    from salespilot.features.pit import observed_end
    from salespilot.models import SPECS
    from salespilot.training.checks import NotEnoughDataError, check_some_label_known
    from salespilot.training.train import build_dataset, observed_horizon_rows

    opps = demo_history.opportunities
    closed = opps[opps["status"].isin(["won", "lost"])].copy()
    closed["closed_at"] = closed["created_at"]
    at_once = dataclasses.replace(demo_history, opportunities=closed)
    spec = dataclasses.replace(SPECS["win_probability"], rows="decision", horizon_days=60)
    frame = observed_horizon_rows(spec, build_dataset(spec, at_once), at_once)
    assert len(frame) == len(closed) and frame[spec.label].notna().all()
    won = closed.set_index("opportunity_id")["status"].eq("won").astype(float)
    assert (frame[spec.label].to_numpy() == won.loc[frame["opportunity_id"]].to_numpy()).all()

    slow = closed.copy()
    slow.iloc[0, slow.columns.get_loc("closed_at")] += pd.Timedelta(days=3)
    one_slow = dataclasses.replace(demo_history, opportunities=slow)
    frame = observed_horizon_rows(spec, build_dataset(spec, one_slow), one_slow)
    late = frame["as_of"] + pd.Timedelta(days=60) > observed_end(one_slow)
    assert late.any() and frame.loc[late, spec.label].isna().all()
    assert frame.loc[~late, spec.label].notna().all()

    with pytest.raises(NotEnoughDataError, match="no row has a known label: the 60-day horizon"):
        check_some_label_known(spec, frame[late])
