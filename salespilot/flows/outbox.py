"""A file-backed outbox for the webhook deliveries (morning lists, weekly briefs).

Each delivery id (``<rep>-<day>``, ``brief-<team>-<week>``) is delivered exactly once:

- ``put`` records a delivery in ``pending/`` *before* it is sent and does nothing for an id
  already in ``delivered/`` (or being sent), so a rerun for the same data day sends nothing twice;
- a sender holds ``outbox.lock`` and *claims* a delivery by moving it to ``sending/`` before the
  POST; a 2xx moves it to ``delivered/``, a failure back to ``pending/`` for the next run;
- a delivery found in ``sending/`` at the next run was interrupted (the sender was killed): it
  goes back to ``pending/`` with the interruption in its attempt log and is sent again.

Every file is written whole (:mod:`salespilot.atomic`: a temporary name, then ``os.replace``),
so a kill leaves the old record or the new one, never half of one. The only window a receiver can see a delivery
twice is a kill between its 2xx answer and the rename that follows; the delivery id travels as
the ``Idempotency-Key`` header for that case. Each body is signed (``X-SalesPilot-Signature``,
HMAC-SHA256 of the exact body bytes with ``SALESPILOT_WEBHOOK_SECRET``; see
:func:`verify_signature` and docs/delivery.md).
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx

from salespilot.atomic import write_json

SIGNATURE_HEADER = "X-SalesPilot-Signature"


@dataclass(frozen=True)
class Delivery:
    delivery_id: str
    path: Path

    def payload(self) -> dict:
        return json.loads(self.path.read_text())["payload"]


class Outbox:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.pending_dir = self.root / "pending"
        self.sending_dir = self.root / "sending"
        self.delivered_dir = self.root / "delivered"
        self._held = 0

    def _ensure(self) -> None:
        for d in (self.pending_dir, self.sending_dir, self.delivered_dir):
            d.mkdir(parents=True, exist_ok=True)

    def put(self, delivery_id: str, payload: dict) -> Delivery | None:
        """Record a delivery as pending; ``None`` (nothing queued) if it was delivered already
        or is being sent right now."""
        with self._locked():
            name = f"{delivery_id}.json"
            if (self.delivered_dir / name).exists() or (self.sending_dir / name).exists():
                return None
            path = self.pending_dir / name
            record = {
                "delivery_id": delivery_id,
                "payload": payload,
                "attempts": [],
                "queued_at": _now(),
            }
            if path.exists():  # keep the attempt log of an earlier run
                record["attempts"] = _read(path).get("attempts", [])
            _write(path, record)
            return Delivery(delivery_id, path)

    def pending(self) -> list[Delivery]:
        if not self.pending_dir.exists():
            return []
        return [Delivery(p.stem, p) for p in sorted(self.pending_dir.glob("*.json"))]

    def delivered_ids(self) -> list[str]:
        if not self.delivered_dir.exists():
            return []
        return sorted(p.stem for p in self.delivered_dir.glob("*.json"))

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """The outbox's lock (``outbox.lock``, across processes; re-entrant in one instance)."""
        self._ensure()
        if self._held:
            self._held += 1
            try:
                yield
            finally:
                self._held -= 1
            return
        with open(self.root / "outbox.lock", "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            self._held = 1
            try:
                yield
            finally:
                self._held = 0
                fcntl.flock(lock, fcntl.LOCK_UN)

    @contextmanager
    def sending(self) -> Iterator[Outbox]:
        """Hold the lock (one sender at a time) and first put back every delivery an
        interrupted sender left in ``sending/`` (and any temporary file a kill cut short)."""
        with self._locked():
            for path in sorted(self.sending_dir.glob("*.json")):
                self._requeue(path, "interrupted: the sender stopped before an answer")
            for tmp in self.root.glob("*/*.tmp"):
                tmp.unlink(missing_ok=True)
            yield self

    def claim(self, delivery: Delivery) -> Delivery:
        """Move a pending delivery to ``sending/`` right before its POST."""
        path = self.sending_dir / delivery.path.name
        os.replace(delivery.path, path)
        return Delivery(delivery.delivery_id, path)

    def record_attempt(self, delivery: Delivery, *, ok: bool, detail: str) -> None:
        """Log the outcome of a claimed (or pending) delivery and file it: 2xx to
        ``delivered/``, anything else back to ``pending/``."""
        record = _read(delivery.path)
        record["attempts"].append({"at": _now(), "ok": ok, "detail": detail})
        _write(delivery.path, record)
        target = self.delivered_dir if ok else self.pending_dir
        if delivery.path.parent != target:
            os.replace(delivery.path, target / delivery.path.name)

    def _requeue(self, path: Path, detail: str) -> None:
        record = _read(path)
        record["attempts"].append({"at": _now(), "ok": False, "detail": detail})
        _write(path, record)
        os.replace(path, self.pending_dir / path.name)


class DeliveryFailed(RuntimeError):
    """The receiver did not accept the delivery (network error or non-2xx answer)."""


def body_bytes(payload: dict) -> bytes:
    """The exact bytes POSTed (and signed) for a payload."""
    return json.dumps(payload, default=str, separators=(",", ":")).encode()


def sign(secret: str, body: bytes) -> str:
    """The signature header's value: ``sha256=`` and the hex HMAC-SHA256 of the body."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_signature(secret: str, body: bytes, header: str | None) -> bool:
    """What a receiver does: recompute the HMAC over the raw body, compare in constant time."""
    return header is not None and hmac.compare_digest(sign(secret, body), header)


def post_json(
    url: str,
    payload: dict,
    *,
    delivery_id: str,
    secret: str | None = None,
    timeout_s: float = 10.0,
) -> int:
    """POST one JSON document; raise :class:`DeliveryFailed` unless the answer is 2xx."""
    body = body_bytes(payload)
    headers = {
        "Content-Type": "application/json",
        "Idempotency-Key": delivery_id,
        "User-Agent": "salespilot",
    }
    if secret:
        headers[SIGNATURE_HEADER] = sign(secret, body)
    try:
        response = httpx.post(url, content=body, headers=headers, timeout=timeout_s)
    except httpx.HTTPError as exc:
        raise DeliveryFailed(f"{url}: {type(exc).__name__}: {exc}") from exc
    if not response.is_success:
        raise DeliveryFailed(f"{url} answered {response.status_code}: {response.text[:200]}")
    return response.status_code


def _read(path: Path) -> dict:
    return json.loads(path.read_text())


def _write(path: Path, record: dict) -> None:
    write_json(path, record, default=str)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
