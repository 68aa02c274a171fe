"""Fixed-window rate limits per caller that need no request context (the verification endpoints').

Counted in Redis (limits' strategy and storage) when ``REDIS_URL`` is set, shared by every instance; in
this process otherwise, or while Redis is unreachable. The verification endpoint
(``service.verification.endpoint``) counts with it, in front of Flask, without a request context.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from limits import RateLimitItem, parse
from limits.storage import storage_from_string
from limits.strategies import FixedWindowRateLimiter

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Allowance:
    allowed: bool
    headers: list[tuple[str, str]]


class LocalWindows:
    """Fixed windows counted in this process with a dict and a lock.

    (limits' ``MemoryStorage`` starts a timer thread to expire its keys, which costs more than the
    verification it would guard.) Windows are aligned to multiples of their length since the epoch.
    """

    MAX_CALLERS = 100_000
    #: Where new callers are counted, together, while the table is full of callers of the current window.
    OVERFLOW = "overflow"

    def __init__(self, item: RateLimitItem, clock: Callable[[], float] = time.time, max_callers: int = MAX_CALLERS):
        self.amount, self.period, self.clock = item.amount, item.get_expiry(), clock
        self.max_callers = max_callers
        self._counts: dict[str, tuple[int, int]] = {}
        self._lock = threading.Lock()

    def count(self, identity: str, cost: int = 1) -> tuple[bool, int, float]:
        """Count a request of ``cost``: whether it is allowed, how many remain, when the window resets.

        Never a reset for everyone: when the table is full, callers of past windows are dropped; if all
        are of this window, a new caller is counted in one shared overflow window (which many callers
        exhaust quickly) rather than given a fresh allowance.
        """
        window = int(self.clock() // self.period)
        with self._lock:
            if identity not in self._counts and len(self._counts) >= self.max_callers:
                self._counts = {who: seen for who, seen in self._counts.items() if seen[0] == window}
                if len(self._counts) >= self.max_callers:
                    identity = self.OVERFLOW
            seen, used = self._counts.get(identity, (window, 0))
            used = used + cost if seen == window else cost
            self._counts[identity] = (window, used)
        return used <= self.amount, max(0, self.amount - used), float((window + 1) * self.period)


class SharedWindows:
    """Fixed windows counted in Redis (limits' strategy and storage), shared by every instance."""

    def __init__(self, item: RateLimitItem, storage_uri: str, prefix: str, scope: str):
        self.item, self.identifiers = item, (prefix, scope)
        self._limiter = FixedWindowRateLimiter(storage_from_string(storage_uri))

    def count(self, identity: str, cost: int = 1) -> tuple[bool, int, float]:
        prefix, scope = self.identifiers
        allowed = self._limiter.hit(self.item, prefix, identity, scope, cost=cost)
        stats = self._limiter.get_window_stats(self.item, prefix, identity, scope)
        return allowed, stats.remaining, stats.reset_time


class KeyLimit:
    """A fixed-window limit per caller that needs no request context: the verification endpoints' own.

    Counted in Redis when ``REDIS_URL`` is set (in this process while Redis is unreachable), else here.
    """

    #: After the shared store fails, count in this process for this long before trying it again.
    RETRY_SHARED_SECONDS = 5.0

    def __init__(self, spec: str, *, storage_uri: str | None, prefix: str, scope: str, enabled: bool = True):
        self.item: RateLimitItem = parse(spec)
        self.enabled = enabled
        self._shared = SharedWindows(self.item, storage_uri, prefix, scope) if storage_uri else None
        self._local = LocalWindows(self.item)
        self._shared_down_until = 0.0

    def _count(self, identity: str, cost: int) -> tuple[bool, int, float]:
        if self._shared is None or time.monotonic() < self._shared_down_until:
            return self._local.count(identity, cost)
        try:
            return self._shared.count(identity, cost)
        except Exception:  # the shared store is down: count in this process for a while
            log.warning(
                "rate-limit storage unreachable; counting in this process for %.0f s", self.RETRY_SHARED_SECONDS
            )
            self._shared_down_until = time.monotonic() + self.RETRY_SHARED_SECONDS
            return self._local.count(identity, cost)

    @property
    def message(self) -> str:
        return f"too many requests: at most {self.item} per API key"

    def hit(self, identity: str, cost: int = 1) -> Allowance:
        """Count one request of ``cost`` (a batch costs its number of items) for ``identity``.

        ``identity`` is who the caller is, not how they spelled it: ``key:<API key id>`` once the key is
        known, ``ip:<address>`` before (or without) it.
        """
        if not self.enabled:
            return Allowance(True, [])
        allowed, remaining, reset = self._count(identity, max(1, cost))
        headers = [
            ("X-RateLimit-Limit", str(self.item.amount)),
            ("X-RateLimit-Remaining", str(remaining)),
            ("X-RateLimit-Reset", str(int(reset))),
        ]
        if not allowed:
            headers.append(("Retry-After", str(max(1, int(reset - time.time())))))
        return Allowance(allowed, headers)
