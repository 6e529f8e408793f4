"""Suggested contact slots are always ahead of when the list is read, in both zones."""

from __future__ import annotations

import pandas as pd

from salespilot.serving.best_times import LIVE_DATA_DAYS, slots_from


def test_slots_start_at_the_wall_clock_while_the_data_are_live():
    as_of = pd.Timestamp("2026-06-30 00:00:01")  # a Tuesday: the export ended at midnight
    tuesday_morning = pd.Timestamp("2026-06-30 08:30", tz="Europe/London")
    assert slots_from(as_of, tuesday_morning) == pd.Timestamp("2026-06-30 07:30")
    # a replay (the history is months old) and a clock behind the data keep the data's as_of
    assert slots_from(as_of, as_of + pd.Timedelta(days=LIVE_DATA_DAYS + 1)) == as_of
    assert slots_from(as_of, as_of - pd.Timedelta(hours=1)) == as_of


def _times(state, rep):
    return [(i.entity_id, i.best_time) for i in state.rep_items[rep] if i.best_time is not None]


def test_a_list_read_the_next_morning_suggests_no_slot_already_gone(
    serving_settings, state, people
):
    from salespilot.serving.best_times import contact_best_times
    from salespilot.serving.state import build_state

    # the fixed history is months old, so the shared state's slots follow its as_of ...
    before = _times(state, people.rep)
    assert before and state.slots_from == state.as_of
    # ... read the next morning at 09:00 UTC (the data end on a Monday night), as live data are
    now = (state.as_of.normalize() + pd.Timedelta(days=1, hours=9)).tz_localize("UTC")
    gone = [bt for _, bt in before if pd.Timestamp(bt.rep_local_time) < now]
    assert gone, "the check needs slots between the data's end and 09:00"
    s = build_state(
        serving_settings,
        history=state.history,
        models=state.models,
        persist_scores=False,
        only_reps={people.rep},
        now=now.to_pydatetime(),
    )
    after = _times(s, people.rep)
    assert len(after) == len(before)
    for _, bt in after:
        theirs, yours = pd.Timestamp(bt.contact_local_time), pd.Timestamp(bt.rep_local_time)
        assert theirs >= now and theirs == yours  # ahead; one instant in two zones
        assert str(theirs.tz) == bt.contact_timezone and str(yours.tz) == bt.rep_timezone
        assert 8 <= theirs.hour < 18 and theirs.weekday() < 5  # the contact's working hours
    contact = after[0][1].contact_id
    top = contact_best_times(s, contact, top=5, working_hours=(8, 18)).top_slots
    assert top and all(pd.Timestamp(t.contact_local_time) >= now for t in top)
