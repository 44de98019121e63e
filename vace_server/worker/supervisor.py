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
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from vace_server.settings import Settings, worker_payload
from vace_server.tasks.store import TaskStore
from vace_server.worker.child import child_main

log = logging.getLogger(__name__)

MAX_BACKOFF_SECONDS = 30.0
STOP_MARGIN_SECONDS = 10.0  # after the grace period: time to reach a checkpoint and requeue


def restart_backoff(failures: int) -> float:
    """Seconds before restarting a child after `failures` deaths in a row (0.5 s doubling,
    at most MAX_BACKOFF_SECONDS)."""
    return min(MAX_BACKOFF_SECONDS, 0.5 * 2.0 ** min(max(failures - 1, 0), 6))


@dataclass
class _Slot:
    index: int
    worker_id: str = ""
    process: Any = None
    restarts: int = 0  # in all (shown by /health)
    failures: int = 0  # deaths in a row without a stable run (drives the backoff)
    started: float = 0.0
    next_start: float = 0.0
    info: dict[str, Any] = field(default_factory=dict)
    last_error: str | None = None


class WorkerSupervisor:
    """Keeps `count` worker processes alive. A dead child's tasks are requeued at once (or
    FAILED when out of attempts) and the child is restarted with exponential backoff, reset
    once a child has run `settings.queue.restart_stable_seconds`. On stop, each child gets
    `settings.queue.stop_grace_seconds` for its task, then the task is requeued without using up an
    attempt (by the child itself, or here after killing a child that did not stop)."""

    def __init__(self, settings: Settings, store: TaskStore, count: int) -> None:
        self.settings = settings
        self.store = store
        self._ctx = mp.get_context("spawn")
        self._reports: Any = self._ctx.Queue()
        self._slots = [_Slot(i) for i in range(count)]
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="worker-supervisor", daemon=True)

    def start(self) -> None:
        self._reap_stale()
        self._thread.start()

    def stop(self) -> None:
        """Stops every child (see the class docstring); returns once they have exited."""
        self._stop.set()
        limit = self.settings.queue.stop_grace_seconds + STOP_MARGIN_SECONDS + 10
        self._thread.join(timeout=limit)

    def snapshot(self) -> list[dict[str, Any]]:
        """What /health shows about each worker (in-process state only)."""
        self._drain_reports()
        with self._lock:
            return [
                {
                    "worker_id": s.worker_id,
                    "pid": s.process.pid if s.process else None,
                    "alive": bool(s.process and s.process.is_alive()),
                    "ready": s.info.get("event") == "ready",
                    "restarts": s.restarts,
                    "model": s.info.get("model"),
                    "model_warning": s.info.get("model_warning"),
                    "device": s.info.get("device"),
                    "annotators": s.info.get("annotators"),
                    "error": s.last_error,
                }
                for s in self._slots
            ]

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

    def _spawn(self, slot: _Slot) -> None:
        slot.worker_id = f"{socket.gethostname()}:{slot.index}:{uuid.uuid4().hex[:12]}"
        slot.info = {}
        slot.process = self._ctx.Process(
            target=child_main,
            args=(worker_payload(self.settings), slot.worker_id, self._reports, os.getpid()),
            name=f"vace-worker-{slot.index}",
            daemon=True,
        )
        slot.process.start()
        slot.started = time.monotonic()
        log.info("started worker %s (pid %s)", slot.worker_id, slot.process.pid)

    def _watch(self) -> None:
        with self._lock:
            for slot in self._slots:
                self._spawn(slot)
        while not self._stop.wait(0.5):
            try:
                self._check_children()
            except Exception:
                log.exception("supervisor pass failed")
        self._stop_children()

    def _check_children(self) -> None:
        self._drain_reports()
        with self._lock:
            for slot in self._slots:
                if self._stop.is_set():
                    return
                proc = slot.process
                if proc is not None and proc.is_alive():
                    continue
                if proc is not None:
                    self._on_death(slot, proc.exitcode)
                    slot.process = None
                if time.monotonic() >= slot.next_start:
                    slot.restarts += 1
                    self._spawn(slot)

    def _on_death(self, slot: _Slot, exitcode: int | None) -> None:
        try:
            moved = self.store.release_worker(slot.worker_id)
        except Exception as exc:  # the database is away: the lease expiry recovers them
            log.warning("could not release the tasks of worker %s: %s", slot.worker_id, exc)
            moved = 0
        ran = time.monotonic() - slot.started
        if ran >= self.settings.queue.restart_stable_seconds:
            slot.failures = 0  # it had run stably: this death starts a new series
        slot.failures += 1
        backoff = restart_backoff(slot.failures)
        slot.next_start = time.monotonic() + backoff
        log.error(
            "worker %s died (exit code %s) after %.0fs; %d task(s) recovered; restart in %.1fs",
            slot.worker_id,
            exitcode,
            ran,
            moved,
            backoff,
        )

    def _stop_children(self) -> None:
        grace = self.settings.queue.stop_grace_seconds
        with self._lock:
            live = [s for s in self._slots if s.process is not None and s.process.is_alive()]
            for slot in live:
                slot.process.terminate()
            if live:
                log.info(
                    "stopping %d worker(s); a task in hand has %gs to finish", len(live), grace
                )
            deadline = time.monotonic() + grace + STOP_MARGIN_SECONDS
            for slot in self._slots:
                if slot.process is None:
                    continue
                slot.process.join(timeout=max(0.1, deadline - time.monotonic()))
                if slot.process.is_alive():
                    slot.process.kill()
                    slot.process.join(timeout=5)
                    log.warning(
                        "worker %s did not stop within %gs of its grace period; killed",
                        slot.worker_id,
                        STOP_MARGIN_SECONDS,
                    )
                self._release_stopped(slot)

    def _release_stopped(self, slot: _Slot) -> None:
        try:
            moved = self.store.release_stopped_worker(slot.worker_id)
        except Exception as exc:
            log.warning("could not requeue the task of worker %s: %s", slot.worker_id, exc)
            return
        if moved:
            log.warning(
                "worker %s stopped by the shutdown: %d task(s) back in the queue, the "
                "interrupted attempt not counted",
                slot.worker_id,
                moved,
            )

    def _drain_reports(self) -> None:
        while True:
            try:
                msg = self._reports.get_nowait()
            except (queue.Empty, OSError, ValueError):
                return
            with self._lock:
                for slot in self._slots:
                    if slot.worker_id != msg.get("worker_id"):
                        continue
                    if msg.get("event") == "error":
                        slot.last_error = msg.get("error")
                    else:
                        slot.info, slot.last_error = msg, None
