"""Fake children, launcher, store and clock for driving `WorkerPool` without processes."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from vace_server.worker.core import Slot


class SecondsClock:
    """Monotonic seconds that only move when told to."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class FakeChild:
    """A child that exits only when the test (or a kill) says so."""

    slot: int
    worker_id: str
    pid: int | None
    code: int | None = None
    terminations: int = 0
    kills: int = 0

    def exit_code(self) -> int | None:
        return self.code

    def terminate(self) -> None:
        self.terminations += 1

    def kill(self) -> None:
        self.kills += 1
        self.code = -signal.SIGKILL

    @property
    def alive(self) -> bool:
        return self.code is None


@dataclass
class FakeLauncher:
    """The pool's `spawn`: records every child it starts."""

    children: list[FakeChild] = field(default_factory=list)

    def __call__(self, slot: Slot) -> FakeChild:
        child = FakeChild(slot.index, slot.worker_id, pid=100 + len(self.children))
        self.children.append(child)
        return child

    def live(self, slot: int) -> list[FakeChild]:
        return [c for c in self.children if c.slot == slot and c.alive]


@dataclass
class FakeReleases:
    """The store's release calls, recorded; `failing` makes them raise (database away)."""

    calls: list[tuple[str, bool]] = field(default_factory=list)  # (worker id, stopped)
    failing: bool = False

    def release_worker(self, worker_id: str) -> int:
        return self._record(worker_id, stopped=False)

    def release_stopped_worker(self, worker_id: str) -> int:
        return self._record(worker_id, stopped=True)

    def _record(self, worker_id: str, *, stopped: bool) -> int:
        if self.failing:
            raise ConnectionError("database unavailable")
        self.calls.append((worker_id, stopped))
        return 1

    def of(self, worker_id: str) -> list[bool]:
        return [stopped for wid, stopped in self.calls if wid == worker_id]


def wait_until(what: str, check: Callable[[], bool], timeout: float = 10.0) -> None:
    """Polls `check` until it holds; fails naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)
