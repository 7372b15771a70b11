"""Rate limits for lookup paths: a generic cell rate algorithm (GCRA) per (scope, principal), in memory.

Every path that answers a question about leaked identifiers (citizen lookups, one-time codes, operator
screening) is limited, so that even a legitimate account cannot turn the register into an enumeration tool.
A refusal is :class:`RateLimited` (HTTP 429) with ``retry_after_seconds`` for the ``Retry-After`` header.

GCRA keeps one float per key (the "theoretical arrival time"): a limit of ``rate`` requests per ``period``
with a ``burst`` allows ``burst`` requests at once and then one every ``period / rate``. It is exact, O(1)
and needs no background task. Keys idle for longer than their period are dropped when the table grows.

Scope: the counters live in the serving process. ``qorgau serve`` runs one process; a deployment with N
processes behind a balancer multiplies the limits by N unless the balancer pins a principal to a process
(docs/operations.md § Rate limits). Principals are opaque strings: callers pass a user id, an API key id or
an HMAC of an address — never an identifier or an address in the clear (the key is not logged either).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from .errors import QorgauError

__all__ = ["Limit", "RateLimited", "RateLimiter"]


class RateLimited(QorgauError):
    """Too many requests: try again after ``retry_after_seconds`` (HTTP 429 with ``Retry-After``)."""

    code = "rate_limited"
    status = 429

    def __init__(self, message: str, *, retry_after_seconds: int, field: str | None = None) -> None:
        super().__init__(message, field=field)
        self.retry_after_seconds = retry_after_seconds

    def to_dict(self) -> dict[str, object]:
        body = super().to_dict()
        body["retry_after_seconds"] = self.retry_after_seconds
        return body


@dataclass(frozen=True, slots=True)
class Limit:
    """``rate`` requests per ``period`` seconds, with up to ``burst`` at once (default: ``rate``)."""

    rate: int
    period: float
    burst: int | None = None

    def __post_init__(self) -> None:
        if self.rate < 1 or self.period <= 0 or (self.burst is not None and self.burst < 1):
            raise ValueError("a rate limit needs rate >= 1, period > 0 and burst >= 1")

    @property
    def interval(self) -> float:
        return self.period / self.rate

    @property
    def tolerance(self) -> float:
        return self.interval * ((self.burst or self.rate) - 1)


class RateLimiter:
    """Named limits, checked with :meth:`hit`. Thread-safe; ``clock`` is injectable for tests."""

    _PRUNE_AT = 100_000

    def __init__(self, limits: dict[str, Limit] | None = None, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._limits: dict[str, Limit] = dict(limits or {})
        self._tat: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()
        self._clock = clock

    def __repr__(self) -> str:
        return f"RateLimiter(scopes={sorted(self._limits)})"

    def configure(self, scope: str, limit: Limit) -> None:
        with self._lock:
            self._limits[scope] = limit

    def limit(self, scope: str) -> Limit:
        try:
            return self._limits[scope]
        except KeyError:
            raise KeyError(f"no rate limit named {scope!r}") from None

    def hit(self, scope: str, principal: str, *, cost: int = 1) -> None:
        """Count ``cost`` requests of ``principal`` against ``scope``'s limit, or raise :class:`RateLimited`
        (nothing is counted then). A cost above the burst can never pass and is refused with the time a
        full bucket takes to refill."""
        limit = self.limit(scope)
        if cost < 1:
            raise ValueError("cost must be at least 1")
        now = self._clock()
        key = (scope, principal)
        increment = limit.interval * cost
        with self._lock:
            tat = max(self._tat.get(key, now), now)
            new_tat = tat + increment
            allow_at = new_tat - limit.interval - limit.tolerance
            # A relative epsilon: float rounding must not refuse the request that spends exactly the last unit.
            if allow_at - now > 1e-9 * limit.period:
                wait = allow_at - now
                if cost > (limit.burst or limit.rate):
                    wait = max(wait, limit.period)
                raise RateLimited(f"too many requests for {scope}; try again in {math.ceil(wait)} s",
                                  retry_after_seconds=max(1, math.ceil(wait)))
            self._tat[key] = new_tat
            if len(self._tat) > self._PRUNE_AT:
                self._prune(now)

    def remaining(self, scope: str, principal: str) -> int:
        """How many requests ``principal`` could make right now."""
        limit = self.limit(scope)
        now = self._clock()
        with self._lock:
            tat = max(self._tat.get((scope, principal), now), now)
        return max(0, int((now + limit.tolerance + limit.interval - tat) / limit.interval + 1e-9))

    def reset(self, scope: str | None = None) -> None:
        with self._lock:
            if scope is None:
                self._tat.clear()
            else:
                for key in [k for k in self._tat if k[0] == scope]:
                    del self._tat[key]

    def _prune(self, now: float) -> None:
        for key in [k for k, tat in self._tat.items() if tat <= now]:
            del self._tat[key]
