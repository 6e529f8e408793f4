"""Account snapshots: by hand, against a naive loop, truncation and leakage properties."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from salespilot.features.accounts import (
    ACCOUNT_CONTEXT_COLUMNS,
    ACCOUNT_FEATURES,
    account_snapshot,
    add_account_labels,
)
from salespilot.features.pit import observed_end, truncate_history
from tests.features.factories import (
    T0,
    comparable,
    make_history,
    random_history,
    with_late_changes,
)
from tests.features.reference import naive_account_rows, naive_churn_label
from tests.features.strategies import LATE_CHANGES

D = pd.Timedelta(days=1)


def _same(a, b) -> bool:
    if b is None:
        return pd.isna(a)
    return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-9)


def test_value_trend_and_churn_label_by_hand():
    h = make_history(
        reps=[{"rep_id": "R1"}, {"rep_id": "R2", "left_at": T0 + 50 * D}],
        accounts=[{"account_id": "A1", "owner_rep_id": "R1"}],
        subscriptions=[
            {
                "account_id": "A1",
                "started_at": T0,
                "ended_at": T0 + 100 * D,
                "monthly_value": 100.0,
            },
            # starts exactly when the first ends: coverage continues until day 150
            {
                "account_id": "A1",
                "started_at": T0 + 100 * D,
                "ended_at": T0 + 150 * D,
                "monthly_value": 300.0,
            },
            {
                "account_id": "A1",
                "started_at": T0 + 60 * D,
                "ended_at": T0 + 70 * D,
                "monthly_value": 50.0,
            },
        ],
        activities=[
            {"occurred_at": T0 + 10 * D, "rep_id": "R2", "channel": "meeting", "outcome": "held"},
            {"occurred_at": T0 + 200 * D, "direction": "inbound"},
        ],
    )
    snap = account_snapshot(h, [T0, T0 + 65 * D, T0 + 120 * D, T0 + 151 * D])
    assert snap["as_of"].tolist() == [T0 + 65 * D, T0 + 120 * D]  # nothing active at T0 / day 151
    first, second = snap.iloc[0], snap.iloc[1]
    assert first["active_monthly_value"] == 150.0 and first["products_held"] == 1
    assert first["annual_value"] == 1800.0
    assert first["monthly_value_90d_ago"] == 0.0
    assert first["owner_left"] == 1  # R2 touched it last and left on day 50, nobody took over
    assert first["days_since_last_meeting"] == 55.0
    assert second["active_monthly_value"] == 300.0 and second["subscriptions_ended"] == 2
    assert second["monthly_value_change_90d"] == 300.0 - 100.0
    assert list(snap.columns) == list(ACCOUNT_CONTEXT_COLUMNS) + list(ACCOUNT_FEATURES)

    labelled = add_account_labels(snap, h, horizon_days=60)
    assert labelled["label_churned"].tolist() == [0.0, 1.0]  # runs out on day 150
    assert add_account_labels(snap, h, horizon_days=20)["label_churned"].tolist() == [0.0, 0.0]


def test_churn_label_unknown_when_still_paying_at_the_end():
    h = make_history(
        subscriptions=[{"started_at": T0, "ended_at": pd.NaT}],
        activities=[{"occurred_at": T0 + 100 * D}],
    )
    snap = add_account_labels(account_snapshot(h, [T0 + 10 * D, T0 + 90 * D]), h, horizon_days=30)
    assert snap["label_churned"].iloc[0] == 0.0
    assert np.isnan(snap["label_churned"].iloc[1])


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 40), step=st.integers(0, 240), horizon=st.sampled_from([7, 30, 90]))
def test_matches_naive_reference(seed, step, horizon):
    h = random_history(seed)
    t = T0 + step * pd.Timedelta(hours=6)
    snap = add_account_labels(account_snapshot(h, t), h, horizon).set_index("account_id")
    expected = naive_account_rows(h, t)
    assert set(snap.index) == set(expected)
    end = observed_end(h)
    for aid, row in expected.items():
        for col, value in row.items():
            assert _same(snap.at[aid, col], value), (aid, col, snap.at[aid, col], value)
        label = naive_churn_label(h, aid, t, pd.Timedelta(days=horizon), end)
        assert _same(snap.at[aid, "label_churned"], label), (aid, "label")


@settings(max_examples=12, deadline=None)
@given(seed=st.integers(0, 40), step=st.integers(0, 240))
def test_full_history_equals_history_truncated_at_t(seed, step):
    h = random_history(seed)
    t = T0 + step * pd.Timedelta(hours=6)
    full = comparable(account_snapshot(h, t), "account_id")
    cut = comparable(account_snapshot(truncate_history(h, t), t), "account_id")
    pd.testing.assert_frame_equal(full, cut, check_dtype=False)


@settings(max_examples=12, deadline=None)
@given(seed=st.integers(0, 40), step=st.integers(0, 240), late=LATE_CHANGES)
def test_events_at_or_after_t_never_change_rows_as_of_t(seed, step, late):
    h = random_history(seed)
    t = T0 + step * pd.Timedelta(hours=6)
    before = comparable(account_snapshot(h, t), "account_id")
    after = comparable(account_snapshot(with_late_changes(h, t, **late), t), "account_id")
    pd.testing.assert_frame_equal(before, after, check_dtype=False)


def test_missing_subscriptions_table_says_what_to_add():
    h = make_history()
    try:
        account_snapshot(h, T0)
    except ValueError as e:
        assert "subscriptions" in str(e)
    else:  # pragma: no cover
        raise AssertionError("expected a ValueError")
