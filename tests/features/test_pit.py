"""The shared point-in-time index against a plain loop over events (ties, events at as_of)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from salespilot.features.pit import (
    EventIndex,
    as_of_index,
    is_open_at,
    known_before,
    running_median,
    to_ns,
)

T0 = pd.Timestamp("2024-01-01")


def _events(seed: int, n: int = 60, sub_second: bool = False):
    rng = np.random.default_rng(seed)
    keys = rng.choice(["a", "b", "c", "d"], n)
    times = T0 + pd.to_timedelta(rng.integers(0, 20, n), unit="D")  # many ties
    if sub_second:  # nanosecond times take the rank-compressed path of the index
        times = times + pd.to_timedelta(rng.integers(0, 3, n), unit="ns")
    values = rng.integers(0, 5, n).astype(np.int64)
    return keys, pd.Series(times), values


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    window_days=st.sampled_from([None, 1, 3, 7]),
    sub_second=st.booleans(),
)
def test_counts_sums_and_last_match_a_naive_loop(seed, window_days, sub_second):
    keys, times, values = _events(seed, sub_second=sub_second)
    idx = EventIndex(keys, times, {"v": values})
    q_keys = np.array(["a", "b", "c", "zz", "a", "d"] * 4)
    q_times = pd.Series(
        T0 + pd.to_timedelta(np.arange(24) % 21, unit="D")
    )  # many exactly at events
    window = None if window_days is None else pd.Timedelta(days=window_days)
    q = idx.at(q_keys, q_times)
    count, total, last = q.count(window), q.sum("v", window), q.last("v")
    for i, (k, t) in enumerate(zip(q_keys, q_times, strict=True)):
        inside = [
            j
            for j in range(len(keys))
            if keys[j] == k and times[j] < t and (window is None or times[j] >= t - window)
        ]
        assert count[i] == len(inside)
        assert total[i] == sum(values[j] for j in inside)
        before = [j for j in range(len(keys)) if keys[j] == k and times[j] < t]
        if before:
            latest = max(times[j] for j in before)
            # ties: the last of the tied events in input order wins
            expected = [values[j] for j in before if times[j] == latest][-1]
            assert last[i] == expected
        else:
            assert np.isnan(last[i])


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), half_life_days=st.sampled_from([0.5, 3, 28]))
def test_decayed_count_matches_a_naive_loop(seed, half_life_days):
    keys, times, values = _events(seed)
    idx = EventIndex(keys, times, {"v": values})
    q_keys = np.array(["a", "b", "c", "zz", "a", "d"] * 4)
    q_times = pd.Series(T0 + pd.to_timedelta(np.arange(24) % 21, unit="D"))
    half_life = pd.Timedelta(days=half_life_days)
    q = idx.at(q_keys, q_times)
    plain, weighted = q.decayed_count(half_life), q.decayed_count(half_life, "v")
    for i, (k, t) in enumerate(zip(q_keys, q_times, strict=True)):
        before = [j for j in range(len(keys)) if keys[j] == k and times[j] < t]
        w = [2.0 ** (-((t - times[j]) / half_life)) for j in before]
        assert np.isclose(plain[i], sum(w), rtol=1e-12, atol=0)
        assert np.isclose(
            weighted[i], sum(wj * values[j] for wj, j in zip(w, before, strict=True)), rtol=1e-12
        )


def test_decayed_count_halves_every_half_life_and_survives_long_spans():
    # one event 10 years before another: the early event must neither overflow nor vanish
    times = pd.Series([T0, T0 + pd.Timedelta(days=3650), T0 + pd.Timedelta(days=3657)])
    idx = EventIndex(np.array(["a", "a", "a"]), times)
    week = pd.Timedelta(days=7)
    q = idx.at(np.array(["a", "a", "a"]), pd.Series([T0 + week, T0 + 2 * week, times[2] + week]))
    assert np.allclose(q.decayed_count(week), [0.5, 0.25, 0.5 + 0.25 + 2.0**-523], rtol=1e-12)


def test_event_exactly_at_as_of_is_not_known():
    idx = EventIndex(np.array(["a", "a"]), pd.Series([T0, T0 + pd.Timedelta(days=1)]))
    q = idx.at(
        np.array(["a", "a", "a"]),
        pd.Series([T0, T0 + pd.Timedelta(days=1), T0 + pd.Timedelta(days=1, nanoseconds=1)]),
    )
    assert q.count().tolist() == [0, 1, 2]
    # a 1-day window at T0+1d includes the event at exactly T0 (the window start is inclusive)
    assert q.count(pd.Timedelta(days=1)).tolist() == [0, 1, 1]


def test_running_median_is_the_median_of_everything_so_far():
    idx = EventIndex(
        np.array(["a", "b", "a", "a", "b"]),
        pd.Series(T0 + pd.to_timedelta([1, 2, 3, 4, 5], unit="D")),
        {"v": np.array([5.0, 1.0, 1.0, 3.0, 7.0])},
    )
    med = running_median(idx.value("v"), idx.group_ids())
    idx.add_values("m", med)
    q = idx.at(
        np.array(["a", "a", "a", "b"]), pd.Series(T0 + pd.to_timedelta([2, 4, 9, 9], unit="D"))
    )
    assert q.last("m").tolist() == [5.0, 3.0, 3.0, 4.0]


def test_state_helpers():
    created = to_ns(pd.Series([T0, T0, T0]))
    closed = to_ns(pd.Series([pd.NaT, T0 + pd.Timedelta(days=1), T0 + pd.Timedelta(days=2)]))
    t = to_ns(pd.Series([T0 + pd.Timedelta(days=1)] * 3))
    assert is_open_at(created, closed, t).tolist() == [True, True, True]  # closing AT t: still open
    assert not is_open_at(
        created, closed, to_ns(pd.Series([T0] * 3))
    ).any()  # created AT t: not yet
    df = pd.DataFrame({"at": [T0, T0 + pd.Timedelta(days=1)]})
    assert len(known_before(df, "at", T0 + pd.Timedelta(days=1))) == 1


def test_as_of_index_accepts_one_or_many_and_tz_aware():
    assert len(as_of_index("2024-01-01")) == 1
    got = as_of_index([pd.Timestamp("2024-01-01 01:00", tz="Europe/Berlin"), "2024-01-01"])
    assert got.tolist() == [pd.Timestamp("2024-01-01 00:00")]


def test_id_codes_agree_between_the_arrow_path_and_the_pandas_fallback():
    from salespilot.features.pit import _codes_arrow, _codes_pandas, column_codes
    from tests.features.factories import make_history

    h = make_history(
        accounts=[{"account_id": "A1"}, {"account_id": "A2"}],
        contacts=[
            {"contact_id": "C1", "account_id": "A2"},
            {"contact_id": "C2", "account_id": "A1"},
            {"contact_id": "C3", "account_id": "A9"},  # unknown: -1
        ],
        activities=[{"activity_id": "X1", "occurred_at": T0, "contact_id": None}],  # empty: -1
    )
    for table, column in (("contacts", "account_id"), ("activities", "account_id")):
        values = h.table(table)[column]
        ids = h.accounts["account_id"]
        assert list(_codes_arrow(values, ids)) == list(_codes_pandas(h, "account", values))
    assert list(column_codes(h, "contacts", "account_id", "account")) == [1, 0, -1]
    contact_codes = _codes_pandas(h, "contact", h.activities["contact_id"])
    assert (
        list(contact_codes)
        == list(_codes_arrow(h.activities["contact_id"], h.contacts["contact_id"]))
        == [-1]
    )


def test_batches_of_one_size_share_a_sort_order_only_where_it_sorts_them():
    """Look-ups of 6k (key, as_of) queries on indexes keyed alike reuse one sort order; a
    batch of the same size in another order still gets its own answers."""
    rng = np.random.default_rng(4)
    n_events, n_queries = 8_000, 6_000
    times = pd.Series(T0 + pd.to_timedelta(rng.integers(0, 400 * 86_400, n_events), unit="s"))
    first = EventIndex(rng.integers(0, 100, n_events), times, n_keys=100)
    second = EventIndex(rng.integers(0, 100, n_events), times, n_keys=100)
    keys = rng.integers(0, 100, n_queries)
    at = to_ns(pd.Series(T0 + pd.to_timedelta(rng.integers(0, 400, n_queries), unit="D")))
    month = 30 * 86_400 * 10**9

    def naive(index: EventIndex, k: np.ndarray, since: int) -> np.ndarray:
        ev_k, ev_t = index.codes, index.times
        return np.array(
            [
                np.sum((ev_k == ki) & (ev_t < ti) & (ev_t >= ti - since))
                for ki, ti in zip(k, at, strict=True)
            ]
        )

    for index, k in ((first, keys), (second, keys), (first, rng.permutation(keys)), (second, keys)):
        q = index.at(k, at)
        np.testing.assert_array_equal(q.count(), naive(index, k, 2 * 400 * 86_400 * 10**9))
        np.testing.assert_array_equal(q.count(pd.Timedelta(days=30)), naive(index, k, month))
