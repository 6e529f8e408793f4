"""Hypothesis strategies shared by the leakage tests."""

from __future__ import annotations

from hypothesis import strategies as st

late_event = st.fixed_dictionaries(
    {
        "after_h": st.integers(0, 400),
        "opp": st.integers(0, 11),
        "contact": st.integers(0, 9),
        "rep": st.integers(0, 3),
        "channel": st.sampled_from(["call", "email", "meeting", "demo", "message"]),
        "direction": st.sampled_from(["outbound", "inbound"]),
        "outcome": st.sampled_from(
            ["connected", "replied", "held", "postponed", "no_answer", None]
        ),
    }
)

#: Keyword arguments for ``factories.with_late_changes``: everything at or after t.
LATE_CHANGES = st.fixed_dictionaries(
    {
        "events": st.lists(late_event, max_size=8),
        "closes": st.lists(
            st.tuples(st.integers(0, 11), st.integers(0, 300), st.booleans()), max_size=4
        ),
        "leaves": st.lists(st.tuples(st.integers(0, 3), st.integers(0, 300)), max_size=2),
        "sub_ends": st.lists(st.tuples(st.integers(0, 7), st.integers(0, 300)), max_size=3),
    }
)
