"""Per-account rate limits (off by default): submissions per second, tasks in flight,
queries per second. Buckets live in this API process; in-flight counts come from the store,
so they hold across replicas."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, fields

from vace_server.errors import ConcurrencyQuota, RateQuota
from vace_server.settings import Settings


@dataclass(frozen=True)
class Limits:
    submit_per_second: float | None = None
    in_flight: int | None = None
    query_per_second: float | None = None


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


class RateLimiter:
    def __init__(
        self,
        defaults: Limits,
        per_account: dict[str, Limits] | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.defaults = defaults
        self.per_account = per_account or {}
        self._clock = clock
        self._buckets: dict[tuple[str, str], _Bucket] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> RateLimiter:
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
        return cls(defaults, per_account)

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
        now = self._clock()
        with self._lock:
            bucket = self._buckets.get((account, kind))
            if bucket is None or bucket.rate != rate:
                bucket = self._buckets[(account, kind)] = _Bucket(rate, now)
            wait = bucket.take(now)
        if wait > 0:
            raise RateQuota(retry_after=wait)
