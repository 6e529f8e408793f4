"""A file-backed outbox for the morning lists' webhook deliveries.

A list is written to ``pending/`` *before* it is sent and moved to ``delivered/`` only after
the receiver answered 2xx, so a delivery that failed (after its retries) is still on disk and
is sent again by the next run - never silently lost. The delivery id travels as the
``Idempotency-Key`` header so a receiver can drop a duplicate if a success reply was lost.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx


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
        self.delivered_dir = self.root / "delivered"

    def _ensure(self) -> None:
        self.pending_dir.mkdir(parents=True, exist_ok=True)
        self.delivered_dir.mkdir(parents=True, exist_ok=True)

    def put(self, delivery_id: str, payload: dict) -> Delivery:
        """Record a delivery as pending (atomically: write a temp file, then rename)."""
        self._ensure()
        path = self.pending_dir / f"{delivery_id}.json"
        tmp = path.with_suffix(".tmp")
        record = {
            "delivery_id": delivery_id,
            "payload": payload,
            "attempts": [],
            "queued_at": _now(),
        }
        if path.exists():  # keep the attempt log of an earlier run
            record["attempts"] = json.loads(path.read_text()).get("attempts", [])
        tmp.write_text(json.dumps(record, default=str))
        os.replace(tmp, path)
        return Delivery(delivery_id, path)

    def pending(self) -> list[Delivery]:
        if not self.pending_dir.exists():
            return []
        return [Delivery(p.stem, p) for p in sorted(self.pending_dir.glob("*.json"))]

    def delivered_ids(self) -> list[str]:
        if not self.delivered_dir.exists():
            return []
        return sorted(p.stem for p in self.delivered_dir.glob("*.json"))

    def record_attempt(self, delivery: Delivery, *, ok: bool, detail: str) -> None:
        record = json.loads(delivery.path.read_text())
        record["attempts"].append({"at": _now(), "ok": ok, "detail": detail})
        tmp = delivery.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(record, default=str))
        os.replace(tmp, delivery.path)
        if ok:
            os.replace(delivery.path, self.delivered_dir / delivery.path.name)


class DeliveryFailed(RuntimeError):
    """The receiver did not accept the delivery (network error or non-2xx answer)."""


def post_json(url: str, payload: dict, *, delivery_id: str, timeout_s: float = 10.0) -> int:
    """POST one JSON document; raise :class:`DeliveryFailed` unless the answer is 2xx."""
    try:
        response = httpx.post(
            url,
            json=payload,
            headers={"Idempotency-Key": delivery_id, "User-Agent": "salespilot"},
            timeout=timeout_s,
        )
    except httpx.HTTPError as exc:
        raise DeliveryFailed(f"{url}: {type(exc).__name__}: {exc}") from exc
    if not response.is_success:
        raise DeliveryFailed(f"{url} answered {response.status_code}: {response.text[:200]}")
    return response.status_code


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
