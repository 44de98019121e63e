"""The supervisor: its restart back-off grows with deaths in a row and resets after a stable
run; around fake children, it reports, recovers, restarts and stops."""

from __future__ import annotations

import time

import pytest

from tests.support.fake_workers import FakeChild, FakeLauncher, wait_until
from tests.tasks.test_store import _create
from vace_server.settings import Settings
from vace_server.tasks.status import TaskStatus
from vace_server.tasks.store import TaskStore
from vace_server.worker.core import MAX_BACKOFF_SECONDS, Slot, restart_backoff
from vace_server.worker.events import Ready
from vace_server.worker.supervisor import WorkerSupervisor


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


class _ObedientLauncher(FakeLauncher):
    """Children that exit as soon as they are told to stop."""

    def __call__(self, slot: Slot) -> FakeChild:
        child = super().__call__(slot)
        child.terminate = lambda: setattr(child, "code", 0)  # type: ignore[method-assign]
        return child


def test_supervisor_reports_recovers_restarts_and_stops(store: TaskStore) -> None:
    """The supervisor's thread around the pool, with fake children and the real store: a
    Ready event reaches /health's entry, a dead child's task is requeued (attempt counted) and
    the slot restarted with a new id, and a stop requeues the task in hand uncounted."""
    settings = Settings(model="tiny", restart_stable_seconds=60, stop_grace_seconds=0)
    launcher = _ObedientLauncher()
    supervisor = WorkerSupervisor(settings, store, 1, spawn=launcher)
    supervisor.start()
    try:
        wait_until("the first child", lambda: len(launcher.children) == 1)
        first = launcher.children[0]
        supervisor._reports.put(Ready(first.worker_id, "tiny", None, "cpu", {"depth": "x"}))
        wait_until("the ready report", lambda: supervisor.snapshot()[0]["ready"])
        entry = supervisor.snapshot()[0]
        assert entry == {
            "worker_id": first.worker_id, "pid": first.pid, "alive": True, "ready": True,
            "restarts": 0, "model": "tiny", "model_warning": None, "device": "cpu",
            "annotators": {"depth": "x"}, "error": None,
        }  # fmt: skip

        task_id = _create(store)
        assert store.claim(first.worker_id) is not None
        first.code = 1  # dies holding the task
        wait_until("the restart", lambda: len(launcher.children) == 2)
        task = store.get(task_id)
        assert task is not None and (task.status, task.attempts) == (TaskStatus.PENDING, 1)
        second = launcher.children[1]
        entry = supervisor.snapshot()[0]
        assert (entry["worker_id"], entry["restarts"], entry["ready"]) == (
            second.worker_id, 1, False,
        )  # fmt: skip

        assert store.claim(second.worker_id) is not None
    finally:
        supervisor.stop()
    task = store.get(task_id)
    assert task is not None and (task.status, task.attempts) == (TaskStatus.PENDING, 1)
    assert second.code == 0 and supervisor.pool.done


def test_the_console_hears_when_a_worker_is_ready_or_cannot_load(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from vace_server.worker.events import Failed
    from vace_server.worker.supervisor import _announce

    _announce(Ready("w1", "tiny", "VACE_MODEL=auto found no CUDA GPU …", "cpu", None))
    _announce(Failed("w2", "VACE_MODEL='x/y' could not load\nFix: download it"))
    assert capsys.readouterr().out.splitlines() == [
        "vace-server: worker w1 ready: model tiny on cpu (VACE_MODEL=auto found no CUDA GPU …)",
        "vace-server: worker w2 could not load the model: VACE_MODEL='x/y' could not load "
        "(retrying; see /health)",
    ]
