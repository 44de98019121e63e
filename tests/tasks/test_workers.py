from __future__ import annotations

import json
import subprocess
import sys

import pytest
from sqlalchemy import select, update

from tests.support.clock import FakeClock
from vace_server.tasks.store import TaskStore
from vace_server.tasks.workers import WorkerRegistry, workers


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


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _set(store: TaskStore, worker_id: str, **values: object) -> None:
    with store.engine.begin() as conn:
        conn.execute(update(workers).where(workers.c.worker_id == worker_id).values(**values))


def test_a_dead_local_worker_with_a_fresh_row_is_not_counted(store: TaskStore) -> None:
    """A `serve` killed with SIGKILL: its children died with it, their rows are still fresh."""
    registry = WorkerRegistry(store.engine)
    if not registry._identity["pid_ns"]:
        pytest.skip("no pid namespace id on this system: rows are judged by age alone")
    registry.beat("dead", {"model": "tiny"})
    registry.beat("live", {"model": "tiny"})
    registry.beat("elsewhere", {"model": "tiny"})
    dead = _dead_pid()
    _set(store, "dead", pid=dead)
    _set(store, "elsewhere", pid=dead, hostname="another-host")
    assert registry.stale_local() == ["dead"]
    assert sorted(w["worker_id"] for w in registry.alive(60_000)) == ["elsewhere", "live"]
    with store.engine.connect() as conn:
        rows = list(conn.execute(select(workers.c.worker_id)).scalars())
    assert "dead" not in rows  # dropped from the registry


def test_a_row_from_before_the_last_boot_is_stale(store: TaskStore) -> None:
    registry = WorkerRegistry(store.engine)
    if not (registry._identity["pid_ns"] and registry._identity["boot_id"]):
        pytest.skip("no boot id on this system")
    registry.beat("old", {"model": "tiny"})
    info = {"model": "tiny", **registry._identity, "boot_id": "an-earlier-boot"}
    _set(store, "old", info=json.dumps(info))  # its pid (ours) runs, but not since that boot
    assert registry.alive(60_000) == []


def test_load_failures_are_recorded_per_host_and_model(store: TaskStore, clock: FakeClock) -> None:
    registry = WorkerRegistry(store.engine, clock=clock)
    registry.record_failure("/models/a", "first error")
    registry.record_failure("/models/a", "second error")  # the same record, refreshed
    failures = registry.failures()
    assert [f["error"] for f in failures] == ["second error"]
    assert registry.alive(60_000) == [] and registry.stale_local() == []
    clock.advance(10 * 60_000)
    assert registry.failures() == []  # not repeated for minutes: history
