"""The supervisor's restart back-off grows with deaths in a row and resets after a stable run."""

from __future__ import annotations

import time

from vace_server.settings import Settings
from vace_server.tasks.store import TaskStore
from vace_server.worker.supervisor import MAX_BACKOFF_SECONDS, WorkerSupervisor, restart_backoff


def test_backoff_doubles_up_to_its_cap() -> None:
    assert [restart_backoff(n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 4.0, 8.0]
    assert restart_backoff(50) == MAX_BACKOFF_SECONDS


def test_backoff_resets_after_a_stable_run(store: TaskStore) -> None:
    settings = Settings(model="tiny", restart_stable_seconds=60)
    supervisor = WorkerSupervisor(settings, store, 1)
    pool = supervisor.pool
    slot = pool.slots[0]
    slot.worker_id = "w-0"

    def dies_after(seconds: float) -> float:
        slot.started = time.monotonic() - seconds
        pool._on_exit(slot, 1)
        return restart_backoff(slot.failures)

    assert [dies_after(1) for _ in range(4)] == [0.5, 1.0, 2.0, 4.0]  # a crash loop
    assert dies_after(120) == 0.5  # it had run stably: a fresh series
    assert dies_after(1) == 1.0
    assert slot.next_start > time.monotonic()
