"""Per-account rate limits (off by default): submissions per second, tasks in flight,
queries per second. By default the token buckets live in the database (tasks/ratebuckets.py),
so N API replicas together allow the limit, not N times it; `VACE_RATE_LIMIT_SHARED=false`
keeps them in this process instead. In-flight counts always come from the store."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Protocol

from vace_server.errors import ConcurrencyQuota, RateQuota
from vace_server.settings import Settings


@dataclass(frozen=True)
class Limits:
    submit_per_second: float | None = None
    in_flight: int | None = None
    query_per_second: float | None = None


class Buckets(Protocol):
    def take(self, account: str, kind: str, rate: float, capacity: float) -> float:
        """Spends one token: 0 on success, else the seconds until one is available."""
        ...


class _Bucket:
    """Token bucket holding at most one second's worth of requests (at least one)."""

    def __init__(self, rate: float, now: float) -> None:
        self.rate = rate
        self.capacity = max(1.0, rate)
        self.tokens = self.capacity
        self.stamp = now

    def take(self, now: float) -> float:
        """Takes a token. Returns 0 on success, else the seconds until one is available."""
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate


class LocalBuckets:
    """Buckets in this process only: one replica's share of nothing but its own traffic."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._buckets: dict[tuple[str, str], _Bucket] = {}
        self._lock = threading.Lock()

    def take(self, account: str, kind: str, rate: float, capacity: float) -> float:
        now = self._clock()
        with self._lock:
            bucket = self._buckets.get((account, kind))
            if bucket is None or bucket.rate != rate:
                bucket = self._buckets[(account, kind)] = _Bucket(rate, now)
            return bucket.take(now)


class RateLimiter:
    def __init__(
        self,
        defaults: Limits,
        per_account: dict[str, Limits] | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        buckets: Buckets | None = None,
    ) -> None:
        self.defaults = defaults
        self.per_account = per_account or {}
        self.buckets: Buckets = buckets or LocalBuckets(clock)

    @classmethod
    def from_settings(cls, settings: Settings, buckets: Buckets | None = None) -> RateLimiter:
        """`buckets` is the shared store's (the app passes it unless VACE_RATE_LIMIT_SHARED is
        off); without it the buckets are this process's own."""
        defaults = Limits(
            submit_per_second=settings.accounts.rate_limit_submit_per_second,
            in_flight=settings.accounts.rate_limit_in_flight,
            query_per_second=settings.accounts.rate_limit_query_per_second,
        )
        per_account: dict[str, Limits] = {}
        if settings.accounts.rate_limits.strip():
            raw = json.loads(settings.accounts.rate_limits)
            known = {f.name for f in fields(Limits)}
            for account, values in raw.items():
                unknown = set(values) - known
                if unknown:
                    raise ValueError(f"VACE_RATE_LIMITS: unknown keys {sorted(unknown)}")
                merged = {f.name: getattr(defaults, f.name) for f in fields(Limits)}
                per_account[account] = Limits(**{**merged, **values})
        return cls(defaults, per_account, buckets=buckets)

    def limits(self, account: str) -> Limits:
        return self.per_account.get(account, self.defaults)

    def check_submit(self, account: str, in_flight: Callable[[], int]) -> None:
        """Raises RateQuota / ConcurrencyQuota (429) when the account is over a limit."""
        limits = self.limits(account)
        self._take(account, "submit", limits.submit_per_second)
        if limits.in_flight is not None and in_flight() >= limits.in_flight:
            raise ConcurrencyQuota(retry_after=1.0)

    def check_query(self, account: str) -> None:
        self._take(account, "query", self.limits(account).query_per_second)

    def _take(self, account: str, kind: str, rate: float | None) -> None:
        if rate is None:
            return
        wait = self.buckets.take(account, kind, rate, max(1.0, rate))
        if wait > 0:
            raise RateQuota(retry_after=wait)
