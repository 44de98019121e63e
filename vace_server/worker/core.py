"""The worker core every launcher uses: worker ids, the restart policy, and `WorkerPool`,
which starts a fixed set of worker slots, notices a dead child, releases its tasks and
restarts it, and stops them all.

`WorkerPool` is a plain state machine: it never sleeps, never starts a thread and reads time
from the clock it is given, so a launcher drives it (`poll()` from its own loop) and tests drive
it with a fake clock and fake children. What a child is (a multiprocessing process for `serve`,
a `vace-server worker` subprocess per GPU) is the launcher's `spawn`. Ray restarts its actors
itself; `ray_actors` uses the ids and the events, not the pool. What a child or
actor receives of the settings is `settings.worker_payload`.
"""

from __future__ import annotations

import logging
import socket
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from vace_server.worker.events import ChildEvent, Failed, Ready

log = logging.getLogger(__name__)

FIRST_BACKOFF_SECONDS = 0.5
MAX_BACKOFF_SECONDS = 30.0
WORKER_ID_CHARS = 96  # the tasks.worker_id column
_SUFFIX_CHARS = 12


def new_worker_id(*role: str) -> str:
    """`host:<role…>:<random>`, unique to one incarnation of one worker: a restarted child
    takes a new one, so the claim fence `(worker_id, attempt)` never mistakes it for the
    dead one. At most WORKER_ID_CHARS long (host and role are cut, never the suffix)."""
    prefix = ":".join([socket.gethostname()[:40], *role])
    return f"{prefix[: WORKER_ID_CHARS - _SUFFIX_CHARS - 1]}:{uuid.uuid4().hex[:_SUFFIX_CHARS]}"


def restart_backoff(failures: int) -> float:
    """Seconds before restarting a child after `failures` deaths in a row (0.5 s doubling,
    at most MAX_BACKOFF_SECONDS)."""
    exponent = min(max(failures - 1, 0), 16)  # bounded: 2**16 * 0.5 is far past the cap
    return min(MAX_BACKOFF_SECONDS, FIRST_BACKOFF_SECONDS * 2.0**exponent)


class ChildHandle(Protocol):
    """One started child, as the pool sees it."""

    @property
    def pid(self) -> int | None: ...

    def exit_code(self) -> int | None:
        """None while the child runs."""

    def terminate(self) -> None:
        """Ask it to stop (SIGTERM: it finishes or requeues its task)."""

    def kill(self) -> None:
        """Stop it now (SIGKILL)."""


class Releases(Protocol):
    """The store's side of a dead child (TaskStore has both)."""

    def release_worker(self, worker_id: str) -> int: ...

    def release_stopped_worker(self, worker_id: str) -> int: ...


@dataclass
class Slot:
    """One worker place the pool keeps filled; each child started in it is an incarnation."""

    index: int
    role: tuple[str, ...]  # the worker id's middle part
    where: str = ""  # for logs, e.g. " on GPU 1"
    worker_id: str = ""
    child: ChildHandle | None = None
    terminated: bool = False  # this incarnation was sent its stop signal
    started: float = 0.0
    next_start: float = 0.0
    restarts: int = 0  # in all (shown by /health)
    failures: int = 0  # deaths in a row without a stable run (drives the back-off)
    ready: Ready | None = None  # this incarnation's Ready event
    last_error: str | None = None  # the last Failed event (kept across restarts)


Spawn = Callable[[Slot], ChildHandle]


class WorkerPool:
    """Keeps one child per slot alive. A dead child's tasks are released at once (requeued,
    or FAILED when out of attempts) and the slot restarts after `restart_backoff`, reset once a
    child has run `stable_seconds`. After `stop()` nothing restarts, and a child that exits
    has its tasks requeued without counting the interrupted attempt. An exit code in
    `fatal_exit_codes` (a startup error the operator must fix: the child never claimed a task,
    so nothing is released) stops the whole pool. `releases` gives the store (called at each
    death, so a launcher may open it lazily)."""

    def __init__(
        self,
        slots: Iterable[Slot],
        *,
        spawn: Spawn,
        releases: Callable[[], Releases],
        stable_seconds: float,
        clock: Callable[[], float] = time.monotonic,
        fatal_exit_codes: frozenset[int] = frozenset(),
    ) -> None:
        self.slots = list(slots)
        self._spawn = spawn
        self._releases = releases
        self.stable_seconds = stable_seconds
        self._clock = clock
        self.fatal_exit_codes = fatal_exit_codes
        self.stopping = False
        self.fatal_exit: int | None = None  # the fatal exit code that stopped the pool

    @property
    def done(self) -> bool:
        """Stopped, and every child has exited."""
        return self.stopping and all(slot.child is None for slot in self.slots)

    def live(self) -> list[Slot]:
        return [s for s in self.slots if s.child is not None and s.child.exit_code() is None]

    def start(self) -> None:
        """Starts a child in every empty slot."""
        for slot in self.slots:
            if slot.child is None and not self.stopping:
                self._start(slot)

    def poll(self) -> None:
        """One pass: reap exited children, restart slots whose back-off is over (or, once
        stopping, send the stop signal to any child that has not had it)."""
        for slot in self.slots:
            child = slot.child
            if child is not None:
                code = child.exit_code()
                if code is None:
                    if self.stopping and not slot.terminated:
                        self._terminate(slot)
                    continue
                self._on_exit(slot, code)
            if not self.stopping and self._clock() >= slot.next_start:
                slot.restarts += 1
                self._start(slot)

    def deliver(self, event: ChildEvent) -> None:
        """Records a child's event on its slot; events of an earlier incarnation are dropped."""
        slot = next((s for s in self.slots if s.worker_id == event.worker_id), None)
        if slot is None:
            return
        if isinstance(event, Ready):
            slot.ready, slot.last_error = event, None
        elif isinstance(event, Failed):
            slot.last_error = event.error

    def stop(self) -> int:
        """No more restarts; every live child is sent its stop signal (once). Returns how many."""
        self.stopping = True
        live = self.live()
        for slot in live:
            if not slot.terminated:
                self._terminate(slot)
        return len(live)

    def kill_remaining(self) -> list[Slot]:
        """SIGKILL to every live child (after stop(): one that outlived its grace period).
        Returns their slots; the next poll() reaps them."""
        live = self.live()
        for slot in live:
            assert slot.child is not None
            slot.child.kill()
        return live

    def abandon(self) -> None:
        """Forgets children that would not die even when killed (their tasks are requeued as
        stopped, as if they had exited), so that a stop always ends with no child."""
        self.stopping = True
        for slot in self.slots:
            if slot.child is not None:
                log.error("worker %s%s did not exit when killed", slot.worker_id, slot.where)
                self._on_exit(slot, None)

    def _start(self, slot: Slot) -> None:
        slot.worker_id = new_worker_id(*slot.role)
        slot.ready = None
        slot.terminated = False
        slot.child = self._spawn(slot)
        slot.started = self._clock()

    def _terminate(self, slot: Slot) -> None:
        assert slot.child is not None
        slot.terminated = True
        slot.child.terminate()

    def _on_exit(self, slot: Slot, code: int | None) -> None:
        slot.child = None
        slot.ready = None
        if self.stopping:
            self._release(slot, stopped=True)
            return
        if code in self.fatal_exit_codes:
            log.error("worker %s%s cannot start; stopping the others", slot.worker_id, slot.where)
            self.fatal_exit = code
            self.stop()
            return
        moved = self._release(slot, stopped=False)
        now = self._clock()
        ran = now - slot.started
        if ran >= self.stable_seconds:
            slot.failures = 0  # it had run stably: this death starts a new series
        slot.failures += 1
        backoff = restart_backoff(slot.failures)
        slot.next_start = now + backoff
        log.error(
            "worker %s%s died (exit code %s) after %.0fs; %d task(s) recovered; restart in %.1fs",
            slot.worker_id,
            slot.where,
            code,
            ran,
            moved,
            backoff,
        )

    def _release(self, slot: Slot, *, stopped: bool) -> int:
        """Requeues the tasks the gone incarnation held. Returns how many moved (0 when the
        database is away: the lease expiry recovers them then)."""
        try:
            releases = self._releases()  # opened on first use by `vace-server worker`
            if not stopped:
                return int(releases.release_worker(slot.worker_id))
            moved = int(releases.release_stopped_worker(slot.worker_id))
        except Exception as exc:
            log.warning("could not release the tasks of worker %s: %s", slot.worker_id, exc)
            return 0
        if moved:
            log.warning(
                "worker %s stopped by the shutdown: %d task(s) back in the queue, the "
                "interrupted attempt not counted",
                slot.worker_id,
                moved,
            )
        return moved
