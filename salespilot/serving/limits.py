"""What one token can make the service spend: rate limits, the rebuild gate, bounded memos and
a time limit on each request's work.

* :class:`RateLimiter`: a token bucket per API token on the expensive routes (``burst``
  requests at once, refilled at ``per_minute``); beyond it 429 with ``Retry-After``.
* :class:`RebuildGate`: at most ``n`` on-demand rebuilds (``?as_of=``) run at once, across
  all tokens; one more answers 429 with ``Retry-After`` instead of queueing.
* :class:`BoundedCache`: an LRU mapping; keys starting with ``_`` are the state's own
  indexes (pinned, never evicted), everything else is a memo bounded to ``maxsize`` entries.
* :func:`run_limited`: runs a request's work in the thread pool under the per-request time
  limit; past it the client gets 503 ``timeout`` (the work finishes in the background).
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, MutableMapping
from typing import Any, TypeVar

from fastapi.concurrency import run_in_threadpool

from salespilot.serving.errors import ApiError

T = TypeVar("T")


class BoundedCache(MutableMapping):
    """A thread-safe LRU memo; ``_``-prefixed string keys are pinned and not counted."""

    def __init__(self, maxsize: int, items: Any = ()) -> None:
        self.maxsize = max(0, int(maxsize))
        self._data: OrderedDict = OrderedDict()
        self._lock = threading.Lock()
        self.update(items)

    @staticmethod
    def _pinned(key: Any) -> bool:
        return isinstance(key, str) and key.startswith("_")

    def __getitem__(self, key: Any) -> Any:
        with self._lock:
            value = self._data[key]
            self._data.move_to_end(key)
            return value

    def __setitem__(self, key: Any, value: Any) -> None:
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            memo = [k for k in self._data if not self._pinned(k)]
            for k in memo[: max(0, len(memo) - self.maxsize)]:
                del self._data[k]

    def __delitem__(self, key: Any) -> None:
        with self._lock:
            del self._data[key]

    def __iter__(self) -> Iterator:
        with self._lock:
            return iter(list(self._data))

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def copy(self) -> BoundedCache:
        with self._lock:
            return BoundedCache(self.maxsize, list(self._data.items()))


def _too_many(message: str, retry_after: float, code: str) -> ApiError:
    seconds = max(1, math.ceil(retry_after))
    return ApiError(
        429, message, code=code, headers={"Retry-After": str(seconds)}, retry_after_s=seconds
    )


class RateLimiter:
    """A token bucket per API token: ``burst`` at once, refilled at ``per_minute``."""

    def __init__(self, per_minute: float, burst: int, max_tokens: int = 10_000) -> None:
        self.rate = per_minute / 60.0
        self.burst = max(1, int(burst))
        self.max_tokens = max_tokens
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def check(self, token_id: str, *, now: float | None = None) -> None:
        """Spend one request of ``token_id``'s bucket, or raise 429."""
        now = time.monotonic() if now is None else now
        with self._lock:
            level, last = self._buckets.pop(token_id, (float(self.burst), now))
            level = min(float(self.burst), level + (now - last) * self.rate)
            if level < 1.0:
                self._buckets[token_id] = (level, now)
                wait = (1.0 - level) / self.rate if self.rate > 0 else 60.0
                raise _too_many(
                    f"Rate limit: at most {self.burst} expensive requests at once and "
                    f"{self.rate * 60:g} a minute per token; retry in {max(1, math.ceil(wait))} s.",
                    wait,
                    "rate_limited",
                )
            self._buckets[token_id] = (level - 1.0, now)
            while len(self._buckets) > self.max_tokens:  # idle buckets go first
                self._buckets.popitem(last=False)


class RebuildGate:
    """At most ``n`` on-demand rebuilds at once; one more is refused, not queued."""

    def __init__(self, n: int) -> None:
        self.n = max(1, int(n))
        self._sem = threading.BoundedSemaphore(self.n)
        self._seconds = 1.0  # the last rebuild's duration: the Retry-After hint

    def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> Callable[[], T]:
        """Take a slot now (or raise 429) and return the work, which frees it when done."""
        if not self._sem.acquire(blocking=False):
            raise _too_many(
                f"{self.n} rebuilds for an earlier as_of are running; retry shortly "
                "(the data's current list needs no rebuild).",
                self._seconds,
                "too_many_rebuilds",
            )

        def work() -> T:
            started = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self._seconds = time.perf_counter() - started
                self._sem.release()

        return work


async def run_limited(seconds: float, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)`` in the thread pool; 503 ``timeout`` after ``seconds``."""
    try:
        return await asyncio.wait_for(run_in_threadpool(fn, *args, **kwargs), timeout=seconds)
    except TimeoutError:
        raise ApiError(
            503,
            f"The request took longer than its {seconds:g} s limit; retry later.",
            code="timeout",
            headers={"Retry-After": str(max(1, math.ceil(seconds)))},
        ) from None


async def memo_limited(cache: Any, key: Any, seconds: float, fn: Callable[[], T]) -> T:
    """``cache[key]``, computed by ``fn`` under the per-request time limit when missing; an
    unknown team (LookupError) answers 404, a value the computation refuses (ValueError) 422."""
    if key not in cache:
        try:
            cache[key] = await run_limited(seconds, fn)
        except LookupError as exc:
            raise ApiError(404, str(exc).strip("'\""), code="team_not_found") from None
        except ValueError as exc:
            raise ApiError(422, str(exc), code="bad_request") from None
    return cache[key]
