"""Token buckets in the database, so every API replica spends from the same bucket.

One row per (account, kind). A take is ONE conditional UPDATE that refills and spends in the
same statement: the database serialises concurrent takes on the row (PostgreSQL row lock,
SQLite's single writer), so N replicas cannot each spend the same token. Only when the UPDATE
matches nothing do we look further: a missing row is inserted (full bucket minus this take),
an empty one is read to say how long until the next token.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    ColumnElement,
    Engine,
    Float,
    String,
    Table,
    and_,
    case,
    insert,
    literal,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from vace_server.clock import Clock, wall_clock_ms
from vace_server.tasks.models import metadata

rate_buckets = Table(
    "rate_buckets",
    metadata,
    Column("account", String(128), primary_key=True),
    Column("kind", String(16), primary_key=True),
    Column("tokens", Float, nullable=False),
    Column("stamp_ms", BigInteger, nullable=False),
)


def _refilled(now_ms: int, rate: float, capacity: float) -> ColumnElement[float]:
    """The row's tokens after refilling up to `now_ms`, capped at `capacity`. A stamp in the
    future (another replica's clock runs ahead) counts as no time passed, never as a debt."""
    t = rate_buckets.c
    elapsed = case((t.stamp_ms < now_ms, literal(now_ms) - t.stamp_ms), else_=0)
    grown = t.tokens + elapsed * (rate / 1000.0)
    return case((grown > capacity, literal(capacity)), else_=grown)


class SharedBuckets:
    """`take` for the API's RateLimiter, backed by the `rate_buckets` table."""

    def __init__(self, engine: Engine, *, clock: Clock = wall_clock_ms) -> None:
        self.engine = engine
        self._clock = clock

    def take(self, account: str, kind: str, rate: float, capacity: float) -> float:
        """Spends one token. Returns 0 on success, else the seconds until one is available."""
        now = self._clock()
        for _ in range(3):  # another round only after losing a race with another replica
            if self._spend(account, kind, now, rate, capacity):
                return 0.0
            tokens = self._tokens(account, kind, now, rate, capacity)
            if tokens is None:
                if self._insert(account, kind, now, capacity):
                    return 0.0
            elif tokens < 1.0:
                return (1.0 - tokens) / rate
        return 1.0 / rate

    def _spend(self, account: str, kind: str, now: int, rate: float, capacity: float) -> bool:
        t = rate_buckets.c
        refilled = _refilled(now, rate, capacity)
        stamp = case((t.stamp_ms < now, literal(now)), else_=t.stamp_ms)
        statement = (
            update(rate_buckets)
            .where(and_(t.account == account, t.kind == kind, refilled >= 1.0))
            .values(tokens=refilled - 1.0, stamp_ms=stamp)
        )
        with self.engine.begin() as conn:
            return conn.execute(statement).rowcount == 1

    def _tokens(
        self, account: str, kind: str, now: int, rate: float, capacity: float
    ) -> float | None:
        t = rate_buckets.c
        query = select(_refilled(now, rate, capacity)).where(
            and_(t.account == account, t.kind == kind)
        )
        with self.engine.connect() as conn:
            value = conn.execute(query).scalar_one_or_none()
        return None if value is None else float(value)

    def _insert(self, account: str, kind: str, now: int, capacity: float) -> bool:
        row = {"account": account, "kind": kind, "tokens": capacity - 1.0, "stamp_ms": now}
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(rate_buckets).values(**row))
        except IntegrityError:
            return False  # another replica created it first: spend from theirs
        return True
