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


def test_a_rerun_for_the_same_day_sends_nothing_already_delivered(tmp_path, quick_retries):
    outbox = Outbox(tmp_path / "outbox")
    receiver = Receiver(fail_first=0)
    try:
        outbox.put("R001-2026-06-29", {"rep_id": "R001"})
        first = push(str(outbox.root), receiver.url, quick_retries)
        # the rerun queues the same lists again (same data day): nothing is pending, nothing sent
        assert outbox.put("R001-2026-06-29", {"rep_id": "R001"}) is None
        outbox.put("R002-2026-06-29", {"rep_id": "R002"})  # one new list
        second = push(str(outbox.root), receiver.url, quick_retries)
    finally:
        receiver.close()
    assert first == {"delivered": ["R001-2026-06-29"], "failed": []}
    assert second == {"delivered": ["R002-2026-06-29"], "failed": []}
    assert [a["key"] for a in receiver.accepted] == ["R001-2026-06-29", "R002-2026-06-29"]


def test_a_send_interrupted_by_a_kill_is_sent_by_the_next_run_once(tmp_path, quick_retries):
    """A sender killed after claiming a delivery (before any answer) leaves it in sending/."""
    outbox = Outbox(tmp_path / "outbox")
    outbox.put("R003-2026-06-29", {"rep_id": "R003"})
    with outbox.sending():
        outbox.claim(outbox.pending()[0])  # ...and the process dies here
    (outbox.root / "pending" / "R004-2026-06-29.tmp").write_text('{"half')  # a cut write
    assert outbox.pending() == []
    assert outbox.put("R003-2026-06-29", {"rep_id": "R003"}) is None  # not queued twice
    receiver = Receiver(fail_first=0)
    try:
        result = push(str(outbox.root), receiver.url, quick_retries)
        again = push(str(outbox.root), receiver.url, quick_retries)
    finally:
        receiver.close()
    assert result == {"delivered": ["R003-2026-06-29"], "failed": []}
    assert again == {"delivered": [], "failed": []}
    assert [a["key"] for a in receiver.accepted] == ["R003-2026-06-29"]
    record = json.loads((outbox.root / "delivered" / "R003-2026-06-29.json").read_text())
    assert [a["ok"] for a in record["attempts"]] == [False, True]
    assert record["attempts"][0]["detail"].startswith("interrupted")
    assert not list(outbox.root.glob("*/*.tmp"))


def test_each_body_is_signed_with_the_webhook_secret(tmp_path, quick_retries):
    from pydantic import SecretStr

    from salespilot.flows.outbox import SIGNATURE_HEADER, verify_signature

    signed = quick_retries.model_copy(update={"webhook_secret": SecretStr("k3y")})
    outbox = Outbox(tmp_path / "outbox")
    outbox.put("R005-2026-06-29", {"rep_id": "R005", "items": [{"score": 0.5}]})
    receiver = Receiver(fail_first=0)
    try:
        push(str(outbox.root), receiver.url, signed)
    finally:
        receiver.close()
    ((headers, raw),) = receiver.raw
    header = headers[SIGNATURE_HEADER]
    # what a receiver does, with only the standard library: HMAC-SHA256 of the raw body
    import hashlib
    import hmac

    assert header == "sha256=" + hmac.new(b"k3y", raw, hashlib.sha256).hexdigest()
    assert verify_signature("k3y", raw, header)
    assert not verify_signature("other", raw, header)
    assert not verify_signature("k3y", raw.replace(b"0.5", b"0.9"), header)
    assert json.loads(raw) == {"rep_id": "R005", "items": [{"score": 0.5}]}
