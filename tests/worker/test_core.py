"""The worker core against fake children and a fake clock: ids, restart back-off, events,
release of a dead child's tasks, stop. The state machine in test_core_state_machine.py
explores the same pool at random."""

from __future__ import annotations

import logging

import pytest

from tests.support.fake_workers import FakeLauncher, FakeReleases, SecondsClock
from vace_server.settings import Settings, from_worker_payload, worker_payload
from vace_server.worker.core import (
    MAX_BACKOFF_SECONDS,
    WORKER_ID_CHARS,
    Slot,
    WorkerPool,
    new_worker_id,
    restart_backoff,
)
from vace_server.worker.events import Failed, Ready

STABLE = 60.0


class Harness:
    def __init__(self, count: int = 1, *, fatal: frozenset[int] = frozenset()) -> None:
        self.clock = SecondsClock()
        self.launcher = FakeLauncher()
        self.releases = FakeReleases()
        self.pool = WorkerPool(
            [Slot(i, role=("test", str(i))) for i in range(count)],
            spawn=self.launcher,
            releases=lambda: self.releases,
            stable_seconds=STABLE,
            clock=self.clock,
            fatal_exit_codes=fatal,
        )
        self.pool.start()

    def crash(self, slot: int = 0, code: int = 1) -> str:
        """The slot's child dies; the next poll sees it. Returns its worker id."""
        child = self.pool.slots[slot].child
        assert child is not None
        self.launcher.live(slot)[0].code = code
        return self.pool.slots[slot].worker_id


def _ready(worker_id: str, model: str = "tiny") -> Ready:
    return Ready(worker_id, model=model, model_warning=None, device="cpu", annotators=None)


def test_worker_ids_are_unique_per_incarnation_and_fit_the_column() -> None:
    ids = {new_worker_id("gpu0", "123") for _ in range(50)}
    assert len(ids) == 50
    long = new_worker_id("x" * 200, "y" * 200)
    assert len(long) == WORKER_ID_CHARS
    assert long.rsplit(":", 1)[1].isalnum() and len(long.rsplit(":", 1)[1]) == 12


def test_the_settings_payload_round_trips() -> None:
    settings = Settings(model="tiny", num_frames=17, stop_grace_seconds=3)
    assert from_worker_payload(worker_payload(settings)) == settings


def test_backoff_is_bounded_for_any_number_of_failures() -> None:
    assert restart_backoff(0) == restart_backoff(1) == 0.5
    assert restart_backoff(10**9) == MAX_BACKOFF_SECONDS


def test_start_fills_every_slot_with_its_own_worker() -> None:
    h = Harness(3)
    ids = [s.worker_id for s in h.pool.slots]
    assert len(set(ids)) == 3 and all(":test:" in i for i in ids)
    assert [c.worker_id for c in h.launcher.children] == ids
    h.pool.poll()  # nothing died: nothing happens
    assert len(h.launcher.children) == 3 and h.releases.calls == []


def test_a_dead_child_is_released_once_and_restarted_after_its_backoff() -> None:
    h = Harness()
    dead = h.crash()
    h.clock.advance(1)
    h.pool.poll()
    assert h.releases.calls == [(dead, False)]
    assert h.pool.slots[0].child is None
    h.clock.advance(0.4)
    h.pool.poll()
    assert h.pool.slots[0].child is None  # 0.5 s back-off not over
    h.clock.advance(0.1)
    h.pool.poll()
    slot = h.pool.slots[0]
    assert slot.child is not None and slot.worker_id != dead and slot.restarts == 1
    h.pool.poll()
    assert h.releases.calls == [(dead, False)]  # released once, not at every pass


def test_backoff_doubles_in_a_crash_loop_and_resets_after_a_stable_run() -> None:
    h = Harness()
    slot = h.pool.slots[0]
    delays = []
    for ran in [1, 1, 1, 1, STABLE + 1, 1]:
        h.clock.advance(ran)
        h.crash()
        h.pool.poll()
        delays.append(slot.next_start - h.clock.now)
        h.clock.advance(delays[-1])
        h.pool.poll()
        assert slot.child is not None
    assert delays == [0.5, 1.0, 2.0, 4.0, 0.5, 1.0]


def test_events_update_the_current_incarnation_only() -> None:
    h = Harness()
    first = h.pool.slots[0].worker_id
    h.pool.deliver(Failed(first, "no such model"))
    assert h.pool.slots[0].last_error == "no such model"
    h.crash()
    h.pool.poll()
    h.clock.advance(1)
    h.pool.poll()
    slot = h.pool.slots[0]
    assert slot.last_error == "no such model"  # still why it is not ready
    h.pool.deliver(_ready(first))  # the dead incarnation: dropped
    assert slot.ready is None
    h.pool.deliver(_ready(slot.worker_id))
    assert slot.ready == _ready(slot.worker_id) and slot.last_error is None
    assert slot.ready.as_dict()["event"] == "ready"


def test_stop_signals_each_child_once_and_requeues_without_restart() -> None:
    h = Harness(2)
    assert h.pool.stop() == 2
    h.pool.poll()
    assert [c.terminations for c in h.launcher.children] == [1, 1]
    first = h.launcher.children[0]
    first.code = 0
    h.pool.poll()
    assert h.releases.calls == [(first.worker_id, True)]
    assert not h.pool.done
    h.clock.advance(100)
    h.pool.poll()
    assert len(h.launcher.children) == 2  # nothing restarts once stopping
    killed = h.pool.kill_remaining()
    assert [s.index for s in killed] == [1]
    h.pool.poll()
    assert h.pool.done
    assert sorted(h.releases.calls) == sorted((c.worker_id, True) for c in h.launcher.children)


def test_abandon_forgets_a_child_that_will_not_die() -> None:
    h = Harness()
    h.pool.stop()
    h.pool.abandon()
    assert h.pool.done
    assert h.releases.calls == [(h.launcher.children[0].worker_id, True)]


def test_a_fatal_exit_stops_the_pool_and_releases_nothing() -> None:
    h = Harness(2, fatal=frozenset({2}))
    h.crash(0, code=2)
    h.pool.poll()
    assert h.pool.stopping and h.pool.fatal_exit == 2
    assert h.launcher.children[1].terminations == 1
    assert h.releases.calls == []
    h.launcher.children[1].code = 0
    h.pool.poll()
    assert h.pool.done
    assert h.releases.calls == [(h.launcher.children[1].worker_id, True)]


def test_a_release_that_fails_is_logged_and_the_slot_still_restarts(
    caplog: pytest.LogCaptureFixture,
) -> None:
    h = Harness()
    h.releases.failing = True
    with caplog.at_level(logging.WARNING, logger="vace_server.worker.core"):
        dead = h.crash()
        h.pool.poll()
    assert f"could not release the tasks of worker {dead}" in caplog.text
    h.clock.advance(1)
    h.pool.poll()
    assert h.pool.slots[0].child is not None
