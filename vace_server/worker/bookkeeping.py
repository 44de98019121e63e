"""Database writes that must never fail a task.

Progress is written by a background thread (the pipeline never waits on the database, and a
write that fails is logged and tried again with the newest state). A task's final transition
(succeed / fail / cancel / requeue) is retried until the database answers, so a PostgreSQL
outage pauses the bookkeeping instead of failing the work done.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy.exc import DBAPIError

from vace_server.tasks.transient import is_transient

log = logging.getLogger(__name__)

T = TypeVar("T")

RETRY_DELAY_SECONDS = 1.0
MAX_SETTLE_DELAY_SECONDS = 5.0


class LatestWriter:
    """Writes the newest submitted state with `write` on a daemon thread, best effort.

    A state submitted while an older one is still unwritten replaces it; a failed write is
    logged (once per outage) and retried every `retry_delay` seconds until a newer state or
    `close()` comes. Nothing it does ever raises into the caller."""

    def __init__(
        self,
        write: Callable[[dict[str, Any]], object],
        *,
        what: str,
        retry_delay: float = RETRY_DELAY_SECONDS,
    ) -> None:
        self._write = write
        self._what = what
        self._retry_delay = retry_delay
        self._cond = threading.Condition()
        self._pending: dict[str, Any] | None = None
        self._busy = False
        self._closed = False
        self._failing = False
        self._thread = threading.Thread(target=self._run, name=f"{what}-writer", daemon=True)
        self._thread.start()

    def submit(self, state: dict[str, Any]) -> None:
        with self._cond:
            self._pending = dict(state)
            self._cond.notify_all()

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Blocks until every submitted state was written. True when it was, in time."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._pending is not None or self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def close(self, timeout: float = 2.0) -> None:
        """Gives the last state `timeout` seconds to be written (none while writes fail),
        then stops the thread."""
        if not self._failing:
            self.wait_idle(timeout)
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(timeout=1.0)

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._pending is None and not self._closed:
                    self._cond.wait()
                if self._closed or self._pending is None:
                    return
                state, self._pending, self._busy = self._pending, None, True
            ok = self._attempt(state)
            with self._cond:
                self._busy = False
                if not ok and self._pending is None:
                    self._pending = state  # try it again unless a newer state came
                self._cond.notify_all()
                if not ok:
                    self._cond.wait(self._retry_delay)

    def _attempt(self, state: dict[str, Any]) -> bool:
        try:
            self._write(state)
        except Exception as exc:
            if not self._failing:
                log.warning("%s write failed; the task goes on, retrying: %s", self._what, exc)
            self._failing = True
            return False
        if self._failing:
            log.info("%s writes resumed", self._what)
            self._failing = False
        return True


def settle(
    operation: Callable[[], T],
    *,
    what: str,
    deadline: float,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> T:
    """Runs a task's final store call, retrying transient database errors until it answers or
    the monotonic `deadline` passes (the task's timeout: by then the server fails it anyway).

    Returns what `operation` returns. Raises: its last error after the deadline, or at once
    for non-transient errors."""
    delay = RETRY_DELAY_SECONDS
    warned = False
    while True:
        try:
            result = operation()
        except DBAPIError as exc:
            if not is_transient(exc) or clock() + delay > deadline:
                raise
            if not warned:
                log.warning("database unavailable for %s; retrying until it returns", what)
                warned = True
            sleep(delay)
            delay = min(delay * 2, MAX_SETTLE_DELAY_SECONDS)
            continue
        if warned:
            log.info("database back: %s done", what)
        return result
