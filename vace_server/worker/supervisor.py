"""Starts worker child processes, notices when one dies, recovers its task, restarts it.

Children are started, watched and stopped by one thread that lives until they have all
stopped: on Linux a child's parent-death signal fires when the thread that started it ends
(see `lifeline`), so no other thread may start one.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import queue
import threading
import time
from typing import Any

from vace_server.settings import Settings, worker_payload
from vace_server.tasks.store import TaskStore
from vace_server.worker.child import child_main
from vace_server.worker.core import Slot, Spawn, WorkerPool
from vace_server.worker.events import Failed, Ready

log = logging.getLogger(__name__)

STOP_MARGIN_SECONDS = 10.0  # after the grace period: time to reach a checkpoint and requeue
KILL_WAIT_SECONDS = 5.0
PASS_SECONDS = 0.5


class _ProcessChild:
    """A multiprocessing child as the pool's `ChildHandle`."""

    def __init__(self, process: Any) -> None:
        self.process = process

    @property
    def pid(self) -> int | None:
        pid: int | None = self.process.pid
        return pid

    def exit_code(self) -> int | None:
        if self.process.is_alive():
            return None
        code: int | None = self.process.exitcode
        return code

    def terminate(self) -> None:
        self.process.terminate()

    def kill(self) -> None:
        self.process.kill()


def served_plan(settings: Settings, count: int) -> list[str | None]:
    """The served model of each embedded worker: `count` workers of the one model (None)
    without a registry; with VACE_MODELS, each entry's `workers` (default `count`) of it."""
    entries = settings.engine.served_models
    if not entries:
        return [None] * count
    return [e.name for e in entries for _ in range(count if e.workers is None else e.workers)]


class WorkerSupervisor:
    """Keeps `count` worker processes alive (a `WorkerPool`: a dead child's tasks are
    requeued at once, or FAILED when out of attempts, and the child is restarted with the
    pool's back-off). On stop, each child gets `settings.queue.stop_grace_seconds` for its
    task, then the task is requeued without using up an attempt (by the child itself, or here
    after killing a child that did not stop). With a registry (VACE_MODELS) the workers are
    started per served model (`served_plan`), each told its model by VACE_SERVED_MODEL.
    `spawn` replaces the real processes in tests."""

    def __init__(
        self, settings: Settings, store: TaskStore, count: int, *, spawn: Spawn | None = None
    ) -> None:
        self.settings = settings
        self.store = store
        self._ctx = mp.get_context("spawn")
        self._reports: Any = self._ctx.Queue()
        self.served = served_plan(settings, count)  # slot index -> its served model
        self.pool = WorkerPool(
            [Slot(i, role=(str(i),)) for i in range(len(self.served))],
            spawn=spawn or self._spawn,
            releases=lambda: store,
            stable_seconds=settings.queue.restart_stable_seconds,
        )
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="worker-supervisor", daemon=True)

    def start(self) -> None:
        self._reap_stale()
        self._thread.start()

    def stop(self) -> None:
        """Stops every child (see the class docstring); returns once they have exited."""
        self._stop.set()
        limit = self.settings.queue.stop_grace_seconds + STOP_MARGIN_SECONDS + KILL_WAIT_SECONDS + 5
        self._thread.join(timeout=limit)

    def snapshot(self) -> list[dict[str, Any]]:
        """What /health shows about each worker (in-process state only)."""
        self._drain_reports()
        with self._lock:
            return [self._entry(slot) for slot in self.pool.slots]

    def _entry(self, slot: Slot) -> dict[str, Any]:
        ready = slot.ready
        entry = {
            "worker_id": slot.worker_id,
            "pid": slot.child.pid if slot.child else None,
            "alive": bool(slot.child and slot.child.exit_code() is None),
            "ready": ready is not None,
            "restarts": slot.restarts,
            "model": ready.model if ready else None,
            "model_warning": ready.model_warning if ready else None,
            "device": ready.device if ready else None,
            "annotators": ready.annotators if ready else None,
            "error": slot.last_error,
        }
        if self.settings.engine.served_models:  # the model it serves (VACE_MODELS only)
            entry["served_model"] = self.served[slot.index]
        return entry

    def _reap_stale(self) -> None:
        """Workers of this host that died with an earlier `serve` (killed): their registry
        rows go and their tasks are requeued now rather than at lease expiry."""
        from vace_server.tasks.workers import WorkerRegistry

        try:
            registry = WorkerRegistry(self.store.engine)
            for worker_id in registry.stale_local():
                moved = self.store.release_worker(worker_id)
                registry.remove(worker_id)
                log.info("worker %s is gone (dead process); %d task(s) requeued", worker_id, moved)
        except Exception as exc:
            log.warning("could not check the registry for dead local workers: %s", exc)

    def _spawn(self, slot: Slot) -> _ProcessChild:
        served = self.served[slot.index]
        settings = self.settings if served is None else self.settings.replace(served_model=served)
        process = self._ctx.Process(
            target=child_main,
            args=(
                worker_payload(settings),
                slot.worker_id,
                self._reports,
                os.getpid(),
            ),
            name=f"vace-worker-{slot.index}",
            daemon=True,
        )
        process.start()
        log.info("started worker %s (pid %s)", slot.worker_id, process.pid)
        return _ProcessChild(process)

    def _watch(self) -> None:
        """The one thread that starts, watches and stops the children (see the module
        docstring for why it must be one)."""
        with self._lock:
            self.pool.start()
        while not self._stop.wait(PASS_SECONDS):
            self._drain_reports()
            try:
                with self._lock:
                    self.pool.poll()
            except Exception:
                log.exception("supervisor pass failed")
        self._stop_children()

    def _stop_children(self) -> None:
        grace = self.settings.queue.stop_grace_seconds
        with self._lock:
            if count := self.pool.stop():
                log.info("stopping %d worker(s); a task in hand has %gs to finish", count, grace)
        if not self._wait_done(grace + STOP_MARGIN_SECONDS):
            with self._lock:
                for slot in self.pool.kill_remaining():
                    log.warning(
                        "worker %s did not stop within %gs of its grace period; killed",
                        slot.worker_id,
                        STOP_MARGIN_SECONDS,
                    )
            self._wait_done(KILL_WAIT_SECONDS)
        with self._lock:
            self.pool.abandon()

    def _wait_done(self, seconds: float) -> bool:
        """Reaps exited children (their tasks requeued) until none is left or `seconds` pass."""
        deadline = time.monotonic() + seconds
        while True:
            with self._lock:
                self.pool.poll()
                if self.pool.done:
                    return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.1)

    def _drain_reports(self) -> None:
        while True:
            try:
                event = self._reports.get_nowait()
            except (queue.Empty, OSError, ValueError):
                return
            if not isinstance(event, Ready | Failed):  # the vocabulary is closed
                log.warning("ignoring an unknown report from a worker child: %r", event)
                continue
            _announce(event)
            with self._lock:
                self.pool.deliver(event)


def _announce(event: Ready | Failed) -> None:
    """One plain line on the console of `serve` for what a newcomer waits for: the worker
    ready with its model (the choice `VACE_MODEL=auto` made, and the tiny model's warning), or
    why it could not load it (it is retried with back-off; /health shows the same)."""
    if isinstance(event, Ready):
        where = f" on {event.device}" if event.device else ""
        note = f" ({event.model_warning})" if event.model_warning else ""
        print(
            f"vace-server: worker {event.worker_id} ready: model {event.model}{where}{note}",
            flush=True,
        )
    else:
        first = event.error.strip().splitlines()[0] if event.error.strip() else "unknown error"
        print(
            f"vace-server: worker {event.worker_id} could not load the model: {first} "
            "(retrying; see /health)",
            flush=True,
        )
