"""Shared token buckets on SQLite and PostgreSQL: refill, per-account rows, several replicas
(engines) spending from one bucket, and concurrent takes that never overspend."""

from __future__ import annotations

import threading

import pytest

from tests.support.clock import FakeClock
from vace_server.tasks import db
from vace_server.tasks.ratebuckets import SharedBuckets


def _replica(database_url: str, clock: FakeClock) -> SharedBuckets:
    engine = db.make_engine(database_url)
    db.upgrade(engine)
    return SharedBuckets(engine, clock=clock)


def test_bucket_refills_and_accounts_are_apart(database_url: str, clock: FakeClock) -> None:
    buckets = _replica(database_url, clock)
    assert buckets.take("a", "submit", 2.0, 2.0) == 0.0
    assert buckets.take("a", "submit", 2.0, 2.0) == 0.0
    assert buckets.take("a", "submit", 2.0, 2.0) == pytest.approx(0.5)
    assert buckets.take("b", "submit", 2.0, 2.0) == 0.0  # another account, another row
    assert buckets.take("a", "query", 2.0, 2.0) == 0.0  # another kind, another row
    clock.advance(250)
    assert buckets.take("a", "submit", 2.0, 2.0) == pytest.approx(0.25)
    clock.advance(250)
    assert buckets.take("a", "submit", 2.0, 2.0) == 0.0
    clock.advance(60_000)  # a long pause refills only up to the capacity
    assert [buckets.take("a", "submit", 2.0, 2.0) for _ in range(3)][2] > 0
    buckets.engine.dispose()


def test_replicas_spend_from_one_bucket(database_url: str, clock: FakeClock) -> None:
    one, two = _replica(database_url, clock), _replica(database_url, clock)
    assert one.take("a", "submit", 2.0, 2.0) == 0.0
    assert two.take("a", "submit", 2.0, 2.0) == 0.0
    assert one.take("a", "submit", 2.0, 2.0) > 0  # the other replica spent the second token
    assert two.take("a", "submit", 2.0, 2.0) > 0
    one.engine.dispose()
    two.engine.dispose()


def test_a_clock_behind_the_stamp_is_no_debt(database_url: str, clock: FakeClock) -> None:
    ahead = FakeClock(clock.ms + 5_000)  # another replica's clock runs 5 s ahead
    fast, slow = _replica(database_url, ahead), _replica(database_url, clock)
    assert fast.take("a", "submit", 1.0, 3.0) == 0.0
    assert slow.take("a", "submit", 1.0, 3.0) == 0.0  # 1 token left, not 1 - 5 s of refill
    assert slow.take("a", "submit", 1.0, 3.0) == 0.0
    assert slow.take("a", "submit", 1.0, 3.0) == pytest.approx(1.0)
    fast.engine.dispose()
    slow.engine.dispose()


def test_concurrent_takes_never_overspend(database_url: str, clock: FakeClock) -> None:
    replicas = [_replica(database_url, clock) for _ in range(3)]
    granted: list[float] = []
    start = threading.Barrier(6)

    def spend(buckets: SharedBuckets) -> None:
        start.wait()
        for _ in range(4):
            granted.append(buckets.take("a", "submit", 10.0, 10.0))

    threads = [threading.Thread(target=spend, args=(replicas[i % 3],)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # 24 takes at one instant against a bucket of 10: exactly 10 granted, however they raced
    assert sum(1 for wait in granted if wait == 0.0) == 10
    assert len(granted) == 24
    for buckets in replicas:
        buckets.engine.dispose()
