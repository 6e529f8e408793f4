"""Contact attempts and candidate slots: DST, a naive reference, leakage properties."""

from __future__ import annotations

import math

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from salespilot.features.contacts import (
    ATTEMPT_FEATURES,
    AttemptRates,
    candidate_slots,
    candidate_slots_for_contacts,
    contact_attempts,
)
from salespilot.features.pit import truncate_history
from tests.features.factories import T0, make_history, random_history, with_late_changes
from tests.features.reference import naive_attempt_rows
from tests.features.strategies import LATE_CHANGES

H = pd.Timedelta(hours=1)
D = pd.Timedelta(days=1)


def _dst_history():
    # Europe/Berlin leaves winter time on Sunday 2024-03-31 (UTC+1 -> UTC+2);
    # America/New_York on 2024-03-10 (UTC-5 -> UTC-4)
    return make_history(
        contacts=[
            {"contact_id": "B", "timezone": "Europe/Berlin"},
            {"contact_id": "N", "timezone": "America/New_York", "role": "user"},
        ],
        activities=[
            {
                "activity_id": "b1",
                "occurred_at": "2024-03-29 09:00",
                "contact_id": "B",
                "outcome": "connected",
            },
            {
                "activity_id": "b2",
                "occurred_at": "2024-04-02 09:00",
                "contact_id": "B",
                "outcome": "no_answer",
            },
            {
                "activity_id": "n1",
                "occurred_at": "2024-03-08 14:00",
                "contact_id": "N",
                "channel": "email",
                "outcome": "replied",
            },
            {
                "activity_id": "n2",
                "occurred_at": "2024-03-11 14:00",
                "contact_id": "N",
                "channel": "email",
                "outcome": None,
            },
            {
                "activity_id": "in",
                "occurred_at": "2024-03-09 14:00",
                "contact_id": "N",
                "direction": "inbound",
                "channel": "email",
            },
        ],
    )


def test_local_hour_follows_daylight_saving_time():
    rows = contact_attempts(_dst_history()).set_index("activity_id")
    assert rows.loc["b1", ["local_hour", "local_weekday"]].tolist() == [10, 4]  # Fri, CET
    assert rows.loc["b2", ["local_hour", "local_weekday"]].tolist() == [11, 1]  # Tue, CEST
    assert rows.loc["n1", "local_hour"] == 9 and rows.loc["n2", "local_hour"] == 10
    assert rows.loc["b1", "label_success"] == 1.0 and rows.loc["b2", "label_success"] == 0.0
    assert rows.loc["n1", "label_success"] == 1.0 and math.isnan(rows.loc["n2", "label_success"])
    # the connected call is known at once: b2 sees one earlier attempt of the contact
    assert rows.loc["b2", "contact_attempts"] == 1 and rows.loc["b1", "contact_attempts"] == 0
    assert rows.loc["b2", "contact_rate"] > rows.loc["b1", "contact_rate"]
    assert rows.loc["n2", "days_since_contact_inbound"] == 2.0


def test_email_outcome_counts_only_24h_after_sending():
    h = make_history(
        contacts=[{"contact_id": "C", "timezone": "UTC"}],
        activities=[
            {
                "activity_id": "e1",
                "occurred_at": T0,
                "contact_id": "C",
                "channel": "email",
                "outcome": "replied",
            },
            {
                "activity_id": "e2",
                "occurred_at": T0 + 23 * H,
                "contact_id": "C",
                "channel": "email",
                "outcome": "no_reply",
            },
            {
                "activity_id": "e3",
                "occurred_at": T0 + 24 * H,
                "contact_id": "C",
                "channel": "email",
                "outcome": "no_reply",
            },
            {
                "activity_id": "e4",
                "occurred_at": T0 + 25 * H,
                "contact_id": "C",
                "channel": "email",
                "outcome": "no_reply",
            },
        ],
    )
    rows = contact_attempts(h).set_index("activity_id")
    assert rows["contact_attempts"].tolist() == [0, 0, 0, 1]  # e1's reply is settled at T0+24h


def test_candidate_slots_cover_working_hours_across_a_dst_switch():
    h = _dst_history()
    slots = candidate_slots(h, "B", "2024-03-29 00:00", days=7)
    assert set(slots["local_hour"]) == set(range(8, 18))
    assert len(slots) == 7 * 10
    friday = slots[slots["slot_start_local"] == pd.Timestamp("2024-03-29 08:00")]
    monday = slots[slots["slot_start_local"] == pd.Timestamp("2024-04-01 08:00")]
    assert friday["slot_start_utc"].iloc[0] == pd.Timestamp("2024-03-29 07:00")  # CET
    assert monday["slot_start_utc"].iloc[0] == pd.Timestamp("2024-04-01 06:00")  # CEST
    assert list(slots.columns)[-len(ATTEMPT_FEATURES) :] == list(ATTEMPT_FEATURES)
    # as_of after the connected call of 03-29 09:00 UTC: the contact's record shows it
    later = candidate_slots(h, "B", "2024-03-30 00:00", days=2)
    assert (later["contact_attempts"] == 1).all()
    assert (slots["contact_attempts"] == 0).all()


def test_slot_features_equal_attempt_features_at_the_same_time():
    h = random_history(3)
    rates = AttemptRates.from_history(h)
    att = contact_attempts(h, rates=rates).iloc[40]
    slots = candidate_slots_for_contacts(
        h,
        [att["contact_id"]],
        att["as_of"],
        days=1,
        working_hours=(0, 24),
        channels=[att["channel"]],
        rates=rates,
    )
    same = slots[
        (slots["local_hour"] == att["local_hour"])
        & (slots["local_weekday"] == att["local_weekday"])
    ]
    assert len(same) == 1  # random histories put events on the hour, so the slot exists
    for col in (
        "contact_rate",
        "contact_band_rate",
        "account_weekday_rate",
        "population_band_rate",
    ):
        assert math.isclose(same[col].iloc[0], att[col]), col


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 40))
def test_matches_naive_reference(seed):
    h = random_history(seed, n_activities=90)
    rows = contact_attempts(h).set_index("activity_id")
    expected = naive_attempt_rows(h)
    assert set(rows.index) == set(expected)
    for aid, row in expected.items():
        for col, value in row.items():
            got = rows.at[aid, col]
            if value is None:
                assert pd.isna(got), (aid, col)
            else:
                assert math.isclose(float(got), float(value), rel_tol=1e-9, abs_tol=1e-12), (
                    aid,
                    col,
                    got,
                    value,
                )


def _comparable(df: pd.DataFrame, t) -> pd.DataFrame:
    out = (
        df[df["as_of"] < t]
        .drop(columns=["label_success"])
        .sort_values("activity_id")
        .reset_index(drop=True)
    )
    for c in out.columns:
        if isinstance(out[c].dtype, pd.CategoricalDtype):
            out[c] = out[c].astype(object)
    return out


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 40), step=st.integers(0, 240), late=LATE_CHANGES)
def test_rows_before_t_ignore_truncation_and_late_events(seed, step, late):
    h = random_history(seed)
    t = T0 + step * pd.Timedelta(hours=6)
    full = _comparable(contact_attempts(h), t)
    cut = _comparable(contact_attempts(truncate_history(h, t)), t)
    pd.testing.assert_frame_equal(full, cut, check_dtype=False)
    later = _comparable(contact_attempts(with_late_changes(h, t, **late)), t)
    pd.testing.assert_frame_equal(full, later, check_dtype=False)


def test_unknown_contact_is_a_key_error():
    try:
        candidate_slots(_dst_history(), "nobody", "2024-03-29")
    except KeyError as e:
        assert "nobody" in str(e)
    else:  # pragma: no cover
        raise AssertionError
