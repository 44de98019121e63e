"""A hypothesis state machine over the worker pool: children start, crash, fail at startup,
report ready, are stopped, obey or are killed, while the fake clock moves.

Invariants: never two live children in one slot; worker ids unique per incarnation; every
gone incarnation released exactly once (a fatal startup exit never, a stop's as "stopped");
the back-off bounded and reset after a stable run, no restart before it is over; nothing
starts once stopping; a finished stop leaves no child.
"""

from __future__ import annotations

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from tests.support.fake_workers import FakeChild, FakeLauncher, FakeReleases, SecondsClock
from vace_server.worker.core import MAX_BACKOFF_SECONDS, Slot, WorkerPool, restart_backoff
from vace_server.worker.events import Failed, Ready

SLOTS = 2
STABLE = 10.0
FATAL = 2
RESTARTS_FIRST = 5

slots = st.integers(min_value=0, max_value=SLOTS - 1)


class PoolMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.clock = SecondsClock()
        self.launcher = FakeLauncher()
        self.releases = FakeReleases()
        self.pool = WorkerPool(
            [Slot(i, role=("sm", str(i))) for i in range(SLOTS)],
            spawn=self.launcher,
            releases=lambda: self.releases,
            stable_seconds=STABLE,
            clock=self.clock,
            fatal_exit_codes=frozenset({FATAL}),
        )
        self.pool.start()
        self.spawned_at_stop: int | None = None
        self.fatal_children: set[str] = set()  # reaped with the fatal code while running

    def _child(self, index: int) -> FakeChild | None:
        live = self.launcher.live(index)
        return live[0] if live else None

    @rule(seconds=st.floats(min_value=0.0, max_value=40.0))
    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)

    @rule(index=slots, code=st.sampled_from([0, 1, -9]))
    def exits(self, index: int, code: int) -> None:
        child = self._child(index)
        if child is not None:
            child.code = code

    # The two ways a pool ends wait for a few restarts, so that crash loops get explored.
    @precondition(lambda self: len(self.launcher.children) >= RESTARTS_FIRST)
    @rule(index=slots)
    def fails_at_startup(self, index: int) -> None:
        child = self._child(index)
        if child is not None:
            child.code = FATAL

    @rule(index=slots)
    def reports_ready(self, index: int) -> None:
        slot = self.pool.slots[index]
        self.pool.deliver(Ready(slot.worker_id, "tiny", None, "cpu", None))
        assert slot.ready is None or slot.ready.worker_id == slot.worker_id

    @rule(index=slots)
    def reports_failure(self, index: int) -> None:
        self.pool.deliver(Failed(self.pool.slots[index].worker_id, "cannot load"))

    @rule(index=slots)
    def stale_event_is_dropped(self, index: int) -> None:
        self.pool.deliver(Ready("host:sm:old:000000000000", "tiny", None, "cpu", None))
        assert all(s.ready is None or s.ready.worker_id == s.worker_id for s in self.pool.slots)

    @rule()
    def poll(self) -> None:
        before = [(s.child, s.started, s.failures, s.next_start) for s in self.pool.slots]
        stopping = self.pool.stopping
        self.pool.poll()
        for slot, (child, started, failures, next_start) in zip(
            self.pool.slots, before, strict=True
        ):
            reaped = child is not None and child.exit_code() is not None
            if reaped and not stopping:
                assert isinstance(child, FakeChild)
                if child.code == FATAL:
                    self.fatal_children.add(child.worker_id)
                    stopping = True  # the pool stopped: later slots of this pass are stopping
                    continue
                ran = self.clock.now - started
                expected = 1 if ran >= STABLE else failures + 1
                assert slot.failures == expected
                assert slot.next_start == self.clock.now + restart_backoff(expected)
            if child is None and slot.child is not None:  # a restart in this pass
                assert self.clock.now >= next_start

    @precondition(lambda self: len(self.launcher.children) >= RESTARTS_FIRST)
    @rule()
    def stop(self) -> None:
        self.pool.stop()
        if self.spawned_at_stop is None:
            self.spawned_at_stop = len(self.launcher.children)

    @precondition(lambda self: self.pool.stopping)
    @rule(index=slots)
    def obeys_stop(self, index: int) -> None:
        child = self._child(index)
        if child is not None and child.terminations:
            child.code = 0

    @precondition(lambda self: self.pool.stopping)
    @rule()
    def kills_the_rest(self) -> None:
        self.pool.kill_remaining()

    @precondition(lambda self: self.pool.stopping)
    @rule()
    def finishes_the_stop(self) -> None:
        """What a launcher does at the end: poll, kill what is left, forget the unkillable."""
        self.pool.poll()
        self.pool.kill_remaining()
        self.pool.poll()
        self.pool.abandon()
        assert self.pool.done
        assert all(slot.child is None for slot in self.pool.slots)

    @invariant()
    def one_live_child_per_slot(self) -> None:
        for index in range(SLOTS):
            assert len(self.launcher.live(index)) <= 1
            current = self.pool.slots[index].child
            assert current is None or current in self.launcher.children

    @invariant()
    def ids_unique_per_incarnation(self) -> None:
        ids = [c.worker_id for c in self.launcher.children]
        assert len(ids) == len(set(ids))

    @invariant()
    def each_gone_incarnation_released_once(self) -> None:
        current = {id(s.child) for s in self.pool.slots if s.child is not None}
        for child in self.launcher.children:
            released = self.releases.of(child.worker_id)
            if id(child) in current or child.worker_id in self.fatal_children:
                assert released == []
            else:
                assert len(released) == 1
                if child.terminations:  # signaled by a stop: its attempt is not counted
                    assert released == [True]

    @invariant()
    def backoff_bounded(self) -> None:
        for slot in self.pool.slots:
            assert slot.next_start - self.clock.now <= MAX_BACKOFF_SECONDS

    @invariant()
    def nothing_starts_once_stopping(self) -> None:
        if self.pool.stopping and self.spawned_at_stop is None:  # a fatal exit stopped it
            self.spawned_at_stop = len(self.launcher.children)
        if self.spawned_at_stop is not None:
            assert len(self.launcher.children) == self.spawned_at_stop

    @invariant()
    def a_finished_stop_leaves_no_child(self) -> None:
        if self.pool.done:
            assert not any(c.alive for c in self.launcher.children)


PoolMachine.TestCase.settings = settings(max_examples=200, stateful_step_count=40, deadline=None)
test_worker_pool = PoolMachine.TestCase
