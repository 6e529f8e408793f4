"""What one token can make the service spend: rate limits, the rebuild gate, the hour rounding
of ``as_of``, bounded memos, the per-request time limit, no server paths in a rep's list."""

from __future__ import annotations

import asyncio
import dataclasses
import threading

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from salespilot.serving.app import create_app
from salespilot.serving.errors import ApiError
from salespilot.serving.limits import BoundedCache, RateLimiter, RebuildGate, run_limited
from salespilot.serving.priorities import as_of_memo, state_as_of
from salespilot.serving.scoring import score
from salespilot.serving.state import build_state


def _app(serving_settings, state, **limits):
    """An app over the already built session state, with its own limits (no second load)."""
    settings = serving_settings.model_copy(update=limits)
    app = create_app(settings, load=False)
    cache = BoundedCache(settings.serving_cache_entries, state.cache.items())
    app.state.holder._state = dataclasses.replace(state, cache=cache)
    return app, settings


def _earlier(state, days: int, minutes: int = 0) -> str:
    return (
        state.as_of.floor("h") - pd.Timedelta(days=days) + pd.Timedelta(minutes=minutes)
    ).isoformat()


def test_rate_limit_per_token_answers_429_with_retry_after(serving_settings, state, people):
    app, _ = _app(serving_settings, state, serving_rate_burst=2, serving_rate_per_minute=1)
    contact = next(iter(state.contact_account))
    url = f"/v1/contacts/{contact}/best-times"
    with TestClient(app) as c:
        admin = people.h("admin")
        codes = [c.get(url, headers=admin).status_code for _ in range(3)]
        assert codes == [200, 200, 429]
        r = c.get(url, headers=admin)
        assert r.status_code == 429
        assert r.json()["error"]["code"] == "rate_limited"
        assert int(r.headers["Retry-After"]) >= 1
        # another token has its own budget; the cheap list is not limited
        assert c.get(url, headers=people.h("manager")).status_code in (200, 403)
        assert (
            c.get(f"/v1/reps/{people.rep}/priorities", headers=people.h("rep")).status_code == 200
        )


def test_rate_limiter_refills_and_stays_bounded():
    lim = RateLimiter(per_minute=60, burst=1, max_tokens=3)
    lim.check("a", now=0.0)
    with pytest.raises(ApiError) as e:
        lim.check("a", now=0.5)
    assert e.value.status_code == 429 and e.value.headers["Retry-After"] == "1"
    lim.check("a", now=1.5)  # one a second
    for t in "bcde":
        lim.check(t, now=2.0)
    assert len(lim._buckets) == 3


def test_at_most_two_rebuilds_then_429(serving_settings, state, people):
    app, _ = _app(serving_settings, state, serving_max_rebuilds=2)
    holder = app.state.holder
    url = f"/v1/reps/{people.rep}/priorities"
    with TestClient(app) as c:
        held = [holder.rebuilds.run(lambda: None) for _ in range(2)]  # two rebuilds running
        with pytest.raises(ApiError):
            holder.rebuilds.run(lambda: None)
        r = c.get(url, params={"as_of": _earlier(state, 20)}, headers=people.h("rep"))
        assert r.status_code == 429, r.text
        assert r.json()["error"]["code"] == "too_many_rebuilds"
        assert int(r.headers["Retry-After"]) >= 1
        # the current list needs no rebuild
        assert c.get(url, headers=people.h("rep")).status_code == 200
        for work in held:
            work()
        r = c.get(url, params={"as_of": _earlier(state, 20)}, headers=people.h("rep"))
        assert r.status_code == 200, r.text


def test_as_of_rounds_to_the_hour_and_the_memo_is_bounded(serving_settings, state, people):
    app, settings = _app(serving_settings, state, serving_as_of_entries=2)
    url = f"/v1/reps/{people.rep}/priorities"
    with TestClient(app) as c:
        s = app.state.holder.state
        s.cache.pop("_as_of", None)  # the shared state may hold other tests' instants
        a = c.get(url, params={"as_of": _earlier(state, 10, 5)}, headers=people.h("rep"))
        b = c.get(url, params={"as_of": _earlier(state, 10, 50)}, headers=people.h("rep"))
        assert a.status_code == b.status_code == 200
        assert a.json()["as_of"] == b.json()["as_of"]
        assert pd.Timestamp(a.json()["as_of"]) == pd.Timestamp(_earlier(state, 10)).tz_localize(
            "UTC"
        )
        memo = as_of_memo(s, settings)
        assert len(memo) == 1  # the second request was a memo hit
        for days in (11, 12, 13):
            c.get(url, params={"as_of": _earlier(state, days)}, headers=people.h("rep"))
        assert len(memo) == 2
        assert len(s.cache) <= settings.serving_cache_entries + 3  # + the pinned indexes


def test_a_reps_as_of_list_equals_the_full_build_at_that_instant(serving_settings, state, people):
    ts = pd.Timestamp(_earlier(state, 7))
    rates = state.cache.get("_rates")
    one = state_as_of(state, serving_settings, ts, people.rep)
    full = build_state(
        serving_settings,
        history=state.history,
        as_of=ts,
        models=state.models,
        persist_scores=False,
        rates=rates,
    )
    mine, theirs = one.rep_items[people.rep], full.rep_items[people.rep]
    assert mine and [i.model_dump() for i in mine] == [i.model_dump() for i in theirs]
    # only the rep's own deals and accounts were built and scored
    assert set(one.deal_owner.values()) <= {people.rep}
    assert len(one.win) < len(full.win)


def test_request_time_limit_answers_503(serving_settings, state, people):
    app, _ = _app(serving_settings, state, serving_request_timeout_s=1e-6)
    with TestClient(app) as c:
        r = c.get(
            f"/v1/reps/{people.rep}/priorities",
            params={"as_of": _earlier(state, 30)},
            headers=people.h("rep"),
        )
        assert r.status_code == 503, r.text
        assert r.json()["error"]["code"] == "timeout"


def test_run_limited_does_not_wait_for_slow_work():
    release = threading.Event()

    async def go():
        with pytest.raises(ApiError) as e:
            await run_limited(0.05, release.wait, 10)
        return e.value

    err = asyncio.run(go())
    release.set()
    assert err.status_code == 503 and err.code == "timeout"


def test_rebuild_gate_frees_its_slot_when_the_work_fails():
    gate = RebuildGate(1)
    work = gate.run(lambda: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        work()
    assert gate.run(lambda: 7)() == 7


def test_bounded_cache_evicts_least_recent_but_keeps_pinned():
    c = BoundedCache(2)
    c["_rates"] = "index"
    c["a"], c["b"] = 1, 2
    assert c["a"] == 1  # a is now the most recent
    c["c"] = 3
    assert set(c) == {"_rates", "a", "c"}


def test_a_reps_list_shows_no_server_path(client, state, people):
    body = client.get(f"/v1/reps/{people.rep}/priorities", headers=people.h("rep")).json()
    source = body["data"]["source"]
    assert state.source is not None and "/" in state.source
    assert source == state.source.rstrip("/").rsplit("/", 1)[-1]


def test_score_builds_once_and_matches_the_separate_calls(state):
    model = state.model("win_probability")
    rows = state.win.values.assign(opportunity_id=state.win.ids)
    s = score(model, rows, "opportunity_id")
    np.testing.assert_allclose(s.proba, model.predict_proba(rows), atol=1e-12)
    np.testing.assert_allclose(s.raw, model.raw_score(rows), atol=1e-9)
    contrib = model.contributions(rows)
    np.testing.assert_allclose(s.contrib, contrib[model.features].to_numpy(), atol=1e-12)
