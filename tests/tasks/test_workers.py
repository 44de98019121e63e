from __future__ import annotations

from tests.support.clock import FakeClock
from vace_server.tasks.store import TaskStore
from vace_server.tasks.workers import WorkerRegistry


def test_beat_alive_and_remove(store: TaskStore, clock: FakeClock) -> None:
    registry = WorkerRegistry(store.engine, clock=clock)
    registry.beat("w1", {"model": "tiny"})
    registry.beat("w2", {"model": "tiny"})
    clock.advance(20_000)
    registry.beat("w1", {"model": "tiny", "device": "cpu"})
    alive = registry.alive(within_ms=10_000)
    assert [w["worker_id"] for w in alive] == ["w1"]
    assert alive[0]["device"] == "cpu" and alive[0]["pid"] > 0
    registry.remove("w1")
    assert registry.alive(within_ms=10_000) == []
