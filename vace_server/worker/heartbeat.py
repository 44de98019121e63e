"""Keeps a claim's lease alive and watches for a cancel request while the worker is busy."""

from __future__ import annotations

import logging
import threading
import time
from types import TracebackType

from vace_server.tasks.store import Claim, TaskStore

log = logging.getLogger(__name__)

CANCEL_POLL_SECONDS = 0.5


class Heartbeat:
    """Context manager running a daemon thread that renews the lease every `interval` seconds
    and checks the task's cancel flag every `cancel_poll` seconds.

    `canceled` is set when a client asked to cancel, or when the claim was lost (lease expired
    and the task requeued, or ended by someone else): either way the work should stop."""

    def __init__(
        self,
        store: TaskStore,
        claim: Claim,
        interval: float,
        *,
        cancel_poll: float = CANCEL_POLL_SECONDS,
    ) -> None:
        self.store = store
        self.claim = claim
        self.interval = interval
        self.cancel_poll = min(cancel_poll, interval)
        self.canceled = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="heartbeat", daemon=True)

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

    def _run(self) -> None:
        """Best effort: a failed read or write (the database is away) is logged once per
        outage and tried again; the lease is renewed as soon as the database is back."""
        next_beat = time.monotonic() + self.interval
        failing = False
        while not self._stop.wait(self.cancel_poll):
            try:
                if self.store.cancel_requested(self.claim):
                    log.info("task %s: cancel requested (or claim lost)", self.claim.task.id)
                    self.canceled.set()
                    return
                if failing or time.monotonic() >= next_beat:
                    next_beat = time.monotonic() + self.interval
                    if not self.store.heartbeat(self.claim):
                        log.warning("lost the claim on task %s", self.claim.task.id)
                        self.canceled.set()
                        return
            except Exception as exc:
                if not failing:
                    log.warning(
                        "heartbeat for task %s failed; the task goes on, retrying: %s",
                        self.claim.task.id,
                        exc,
                    )
                failing = True
                continue
            if failing:
                log.info("heartbeat for task %s resumed", self.claim.task.id)
                failing = False
