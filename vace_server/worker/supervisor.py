"""Starts worker child processes, notices when one dies, recovers its task, restarts it."""

from __future__ import annotations

import logging
import multiprocessing as mp
import queue
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from vace_server.settings import Settings
from vace_server.tasks.store import TaskStore
from vace_server.worker.child import child_main

log = logging.getLogger(__name__)

MAX_BACKOFF_SECONDS = 30.0
STOP_GRACE_SECONDS = 10.0


@dataclass
class _Slot:
    index: int
    worker_id: str = ""
    process: Any = None
    restarts: int = 0
    next_start: float = 0.0
    info: dict[str, Any] = field(default_factory=dict)
    last_error: str | None = None


class WorkerSupervisor:
    """Keeps `count` worker processes alive. A dead child's tasks are requeued at once (or
    FAILED when out of attempts) and the child is restarted with exponential backoff."""

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
        for slot in self._slots:
            self._spawn(slot)
        self._thread.start()

    def stop(self) -> None:
        """Stops every child; tasks they held go back to the queue."""
        self._stop.set()
        self._thread.join(timeout=5)
        with self._lock:
            for slot in self._slots:
                if slot.process is not None and slot.process.is_alive():
                    slot.process.terminate()
            deadline = time.monotonic() + STOP_GRACE_SECONDS
            for slot in self._slots:
                if slot.process is None:
                    continue
                slot.process.join(timeout=max(0.1, deadline - time.monotonic()))
                if slot.process.is_alive():
                    slot.process.kill()
                    slot.process.join(timeout=5)
                self.store.release_worker(slot.worker_id)

    def snapshot(self) -> list[dict[str, Any]]:
        """What /health shows about each worker."""
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

    def _spawn(self, slot: _Slot) -> None:
        slot.worker_id = f"{socket.gethostname()}:{slot.index}:{uuid.uuid4().hex[:12]}"
        slot.info = {}
        slot.process = self._ctx.Process(
            target=child_main,
            args=(self.settings.model_dump_json(), slot.worker_id, self._reports),
            name=f"vace-worker-{slot.index}",
            daemon=True,
        )
        slot.process.start()
        log.info("started worker %s (pid %s)", slot.worker_id, slot.process.pid)

    def _watch(self) -> None:
        while not self._stop.wait(0.5):
            try:
                self._check_children()
            except Exception:
                log.exception("supervisor pass failed")

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
        moved = self.store.release_worker(slot.worker_id)
        log.error(
            "worker %s died (exit code %s); %d task(s) recovered", slot.worker_id, exitcode, moved
        )
        backoff = min(MAX_BACKOFF_SECONDS, 2.0 ** min(slot.restarts, 5) * 0.5)
        slot.next_start = time.monotonic() + backoff

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
