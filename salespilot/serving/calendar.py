"""The morning list as calendar events (RFC 5545, built with ``icalendar``).

One event per suggested call: at the item's best time, 30 minutes, in UTC (so no time-zone
table is needed). A UID is stable per rep, item and slot, so a calendar that subscribes to
``/v1/reps/{rep_id}/calendar.ics`` updates events instead of duplicating them.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from icalendar import Calendar, Event

from salespilot.serving.schemas import PriorityItem

CALL_MINUTES = 30


def _utc(t: datetime) -> datetime:
    return t.astimezone(UTC)


def call_event(
    item: PriorityItem, *, rep_id: str, start: datetime, stamp: datetime, slot: int = 0
) -> Event:
    """One call to make: what, when, why (the next step and the top reasons)."""
    ev = Event()
    ev.add("uid", f"salespilot-{rep_id}-{item.kind}-{item.entity_id}-{slot}@salespilot")
    ev.add("dtstamp", _utc(stamp))
    ev.add("dtstart", _utc(start))
    ev.add("dtend", _utc(start) + timedelta(minutes=CALL_MINUTES))
    who = item.account_name or item.account_id
    ev.add("summary", f"Call {who}: {item.title}")
    reasons = [f.text for f in item.factors.positive] + [w.message for w in item.warnings]
    lines = [item.next_step, "", f"Rank {item.rank}, grade {item.grade}."]
    lines += [f"- {r}" for r in reasons]
    ev.add("description", "\n".join(lines))
    return ev


def calendar_ics(events: Iterable[Event], *, name: str) -> bytes:
    cal = Calendar()
    cal.add("prodid", "-//SalesPilot//morning list//EN")
    cal.add("version", "2.0")
    cal.add("x-wr-calname", name)
    for ev in events:
        cal.add_component(ev)
    return cal.to_ical()


def rep_calendar(
    items: Iterable[PriorityItem], *, rep_id: str, stamp: datetime, limit: int = 20
) -> bytes:
    """The rep's list as one calendar: each item with a best time, ranked order."""
    events = [
        call_event(it, rep_id=rep_id, start=it.best_time.contact_local_time, stamp=stamp)
        for it in list(items)[:limit]
        if it.best_time is not None
    ]
    return calendar_ics(events, name=f"SalesPilot calls for {rep_id}")
