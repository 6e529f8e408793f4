"""The pages' plain parts without a browser: the calendar file, the session cookie, the demo."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from icalendar import Calendar
from starlette.requests import Request
from starlette.responses import Response

from salespilot.serving.auth import TokenStore
from salespilot.serving.calendar import rep_calendar
from salespilot.serving.schemas import BestTime, Factors, PriorityItem, Trend
from salespilot.serving.web.session import SESSION_COOKIE, WebSessions


def _item(rank: int, best: datetime | None) -> PriorityItem:
    bt = None
    if best is not None:
        bt = BestTime(
            contact_id="C1",
            contact_role="decision_maker",
            contact_timezone="America/Chicago",
            contact_local_time=best,
            rep_timezone="Europe/Paris",
            rep_local_time=best.astimezone(ZoneInfo("Europe/Paris")),
            connect_probability=0.5,
        )
    return PriorityItem(
        rank=rank, kind="deal", entity_id=f"O{rank}", account_id="A1", account_name="Acme",
        title="Acme - renewal", model="win_probability", score=0.6, value=10_000,
        value_at_stake=6_000, grade="A", trend=Trend(direction="new"), best_time=bt,
        warnings=[], factors=Factors(positive=[], negative=[]), next_step="Call them.",
    )  # fmt: skip


def test_rep_calendar_has_one_utc_event_per_item_with_a_best_time():
    chicago = datetime(2026, 7, 1, 9, 30, tzinfo=ZoneInfo("America/Chicago"))
    items = [_item(1, chicago), _item(2, None), _item(3, chicago + timedelta(hours=2))]
    stamp = datetime(2026, 6, 30, tzinfo=UTC)
    cal = Calendar.from_ical(rep_calendar(items, rep_id="R1", stamp=stamp))
    events = cal.walk("VEVENT")
    assert [str(e["summary"]) for e in events] == ["Call Acme: Acme - renewal"] * 2
    start = events[0].decoded("dtstart")
    assert start == chicago and start.utcoffset() == timedelta(0)  # 14:30 UTC
    assert events[0].decoded("dtend") - start == timedelta(minutes=30)
    assert len({str(e["uid"]) for e in events}) == 2  # stable, distinct UIDs
    again = Calendar.from_ical(rep_calendar(items, rep_id="R1", stamp=stamp))
    assert [str(e["uid"]) for e in again.walk("VEVENT")] == [str(e["uid"]) for e in events]


def _request(cookie: str | None) -> Request:
    headers = [] if cookie is None else [(b"cookie", f"{SESSION_COOKIE}={cookie}".encode())]
    return Request({"type": "http", "headers": headers, "method": "GET", "path": "/app/"})


def test_session_cookie_is_signed_expires_and_ends_with_the_token(settings, monkeypatch):
    store = TokenStore.for_state_dir(settings.state_dir)
    secret, record = store.create(role="admin")
    web = WebSessions(settings, store)
    resp = Response()
    assert web.sign_in(resp, "sp_not_a_token") is None
    assert web.sign_in(resp, secret).token_id == record.token_id
    cookie = resp.headers["set-cookie"]
    assert "httponly" in cookie.lower() and "samesite=lax" in cookie.lower()
    value = cookie.split(";")[0].split("=", 1)[1]
    assert secret not in value  # the cookie holds the hash's signature, never the token
    assert web.principal(_request(value)).token_id == record.token_id
    assert web.principal(_request(value[:-2] + "xx")) is None  # tampered
    # expired: read it back as if max_age had passed
    late = WebSessions(settings.model_copy(update={"web_session_max_age_s": 60}), store)
    import itsdangerous

    real = itsdangerous.timed.TimestampSigner.get_timestamp
    monkeypatch.setattr(
        itsdangerous.timed.TimestampSigner, "get_timestamp", lambda self: real(self) + 120
    )
    assert late.principal(_request(value)) is None
    monkeypatch.undo()
    store.revoke(record.token_id)
    assert web.principal(_request(value)) is None  # revoking the token ends its sessions


def test_demo_prints_the_sign_in_address():
    from salespilot.cli import demo

    tokens = {r: {"token": f"sp_{r}", "scope": s} for r, s in
              (("rep", "R1"), ("manager", "T 1"), ("admin", "all"))}  # fmt: skip
    with demo.console.capture() as out:
        demo._print_examples(8123, tokens)
    text = out.get()
    assert "sign in at http://127.0.0.1:8123/app/login" in text


def test_calendar_keys_name_one_rep_and_end_with_their_token(settings):
    from salespilot.serving.auth import CalendarKeys

    store = TokenStore.for_state_dir(settings.state_dir)
    _, record = store.create(role="rep", rep_id="R1")
    keys = CalendarKeys("a signing key", store)
    key = keys.key(record.principal(), "R1")
    assert keys.principal(key, "R1").token_id == record.token_id
    assert keys.principal(key, "R2") is None  # bound to its rep
    assert keys.principal(key[:-2] + "xx", "R1") is None  # tampered
    assert CalendarKeys("another key", store).principal(key, "R1") is None
    store.revoke(record.token_id)
    assert keys.principal(key, "R1") is None
