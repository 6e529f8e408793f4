"""The morning push: a real HTTP receiver on loopback, failing and recovering."""

from __future__ import annotations

import json

import pytest
from prefect import flow

from salespilot.flows.morning import send_pending
from salespilot.flows.outbox import Outbox
from tests.flows.conftest import Receiver


@pytest.fixture
def quick_retries(settings):
    return settings.model_copy(update={"webhook_retries": 2, "webhook_retry_delay_s": 0})


@flow
def push(outbox_dir: str, url: str, settings) -> dict:
    return send_pending(Outbox(outbox_dir), url, settings)


def test_fails_twice_then_delivers_exactly_once(tmp_path, quick_retries):
    receiver = Receiver(fail_first=2)
    try:
        outbox = Outbox(tmp_path / "outbox")
        outbox.put("R001-2026-06-29", {"rep_id": "R001", "items": [1, 2]})
        result = push(str(outbox.root), receiver.url, quick_retries)
    finally:
        receiver.close()
    assert result == {"delivered": ["R001-2026-06-29"], "failed": []}
    assert len(receiver.requests) == 3  # two failures, then the success
    assert receiver.accepted == [
        {"key": "R001-2026-06-29", "body": {"rep_id": "R001", "items": [1, 2]}}
    ]
    assert outbox.pending() == []
    assert outbox.delivered_ids() == ["R001-2026-06-29"]


def test_failed_delivery_is_kept_and_sent_by_the_next_run(tmp_path, quick_retries):
    outbox = Outbox(tmp_path / "outbox")
    outbox.put("R002-2026-06-29", {"rep_id": "R002"})
    down = Receiver(fail_first=10**6)
    try:
        first = push(str(outbox.root), down.url, quick_retries)
    finally:
        down.close()
    assert first == {"delivered": [], "failed": ["R002-2026-06-29"]}
    assert len(down.requests) == 3  # the first try and two retries
    (pending,) = outbox.pending()
    attempts = json.loads(pending.path.read_text())["attempts"]
    assert attempts[-1]["ok"] is False and "500" in attempts[-1]["detail"]

    up = Receiver(fail_first=0)
    try:
        second = push(str(outbox.root), up.url, quick_retries)
    finally:
        up.close()
    assert second == {"delivered": ["R002-2026-06-29"], "failed": []}
    assert [a["body"] for a in up.accepted] == [{"rep_id": "R002"}]
    assert outbox.pending() == []
