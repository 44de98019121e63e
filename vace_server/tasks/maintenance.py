"""Periodic housekeeping: expired leases, overdue tasks, retention purge."""

from __future__ import annotations

import logging
import threading
from typing import Protocol

from vace_server.errors import TaskTimeout
from vace_server.tasks.store import TaskStore
from vace_server.tasks.transient import OutageLog

log = logging.getLogger(__name__)


class Deleter(Protocol):
    def delete(self, key: str) -> None: ...


class Purger(Protocol):
    def purge_expired(self) -> list[str]: ...


class Maintenance:
    """Runs `run_once` every `interval` seconds on a daemon thread until `stop()`."""

    def __init__(
        self,
        store: TaskStore,
        storage: Deleter,
        *,
        interval: float,
        task_timeout_ms: int,
        uploads: Purger | None = None,
    ) -> None:
        self.store = store
        self.uploads = uploads  # temporary uploads (oss://), purged 48 h after upload
        self.storage = storage
        self.interval = interval
        self.task_timeout_ms = task_timeout_ms
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self) -> None:
        """Requeues tasks of vanished workers, fails overdue ones, purges expired ones.

        Side effects: task rows updated/deleted, output files deleted."""
        moved = self.store.requeue_expired_leases()
        if moved:
            log.warning("recovered %d task(s) whose worker lease expired", moved)
        overdue = self.store.fail_overdue(
            self.task_timeout_ms, code=TaskTimeout.code, message=TaskTimeout.default_message
        )
        if overdue:
            log.warning("%d task(s) timed out", overdue)
        for key in self.store.purge_expired():
            try:
                self.storage.delete(key)
            except Exception:
                log.exception("could not delete expired output %s", key)
        if self.uploads is not None:
            self.uploads.purge_expired()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="maintenance", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=10)

    def _loop(self) -> None:
        outage = OutageLog("maintenance pass", log)
        while not self._stop.wait(self.interval):
            try:
                self.run_once()
            except Exception as exc:
                outage.failed(exc)
            else:
                outage.succeeded()
