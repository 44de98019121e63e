"""Keeps a claim's lease alive while the worker is busy with it."""

from __future__ import annotations

import logging
import threading
from types import TracebackType

from vace_server.tasks.store import Claim, TaskStore

log = logging.getLogger(__name__)


class Heartbeat:
    """Context manager: renews the lease every `interval` seconds on a daemon thread.

    `lost` is set when the store says the claim is no longer ours (lease expired and the
    task was requeued, or the task was ended by someone else)."""

    def __init__(self, store: TaskStore, claim: Claim, interval: float) -> None:
        self.store = store
        self.claim = claim
        self.interval = interval
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="heartbeat", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=self.interval + 5)

    def _beat(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                if not self.store.heartbeat(self.claim):
                    log.warning("lost the claim on task %s", self.claim.task.id)
                    self.lost.set()
                    return
            except Exception:
                log.exception("heartbeat for task %s failed; will retry", self.claim.task.id)
