"""Riding out a database restart or fail-over: which errors are worth retrying, and a retry
loop for the store calls that are safe to repeat.

After a server restart every pooled connection is dead; `pool_pre_ping` replaces them on
checkout, but a statement already under way, or a connection attempt while the server is still
down, fails with an OperationalError. Retrying for a few seconds turns a restart into a pause
instead of a failed task or a 500.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy import Connection, Engine, Update
from sqlalchemy.exc import DBAPIError, OperationalError

log = logging.getLogger(__name__)

T = TypeVar("T")

RETRY_SECONDS = 20.0
FIRST_DELAY_SECONDS = 0.05
MAX_DELAY_SECONDS = 1.0


def is_transient(exc: BaseException) -> bool:
    """True for errors that a later attempt may not meet: the connection was lost (or could
    not be made), serialization failures, deadlocks, SQLite's "database is locked"."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    if not isinstance(exc, OperationalError):
        return False
    if type(exc.orig).__module__ == "sqlite3":  # there it also means "no such table" etc.
        message = str(exc.orig).lower()
        return "locked" in message or "busy" in message
    return True


def retrying(
    operation: Callable[[int], T], *, what: str, within_seconds: float = RETRY_SECONDS
) -> T:
    """Runs `operation(attempt)` (attempt counts from 1) until it returns, retrying transient
    database errors with backoff for up to `within_seconds`.

    `operation` must be safe to run again after a failure whose outcome is unknown (the error
    may come after the COMMIT was sent); `attempt > 1` lets it check what the earlier run did.

    Returns what `operation` returns. Raises its last error once the time is up, or at once
    for non-transient errors."""
    deadline = time.monotonic() + within_seconds
    delay = FIRST_DELAY_SECONDS
    attempt = 1
    while True:
        try:
            return operation(attempt)
        except DBAPIError as exc:
            if not is_transient(exc) or time.monotonic() + delay > deadline:
                raise
            if attempt == 1:
                log.warning("database unavailable during %s; retrying: %s", what, exc.orig)
        time.sleep(delay)
        delay = min(delay * 2, MAX_DELAY_SECONDS)
        attempt += 1


class RetryingAccess:
    """Mixin for stores: reads and idempotent writes retried across a lost connection."""

    engine: Engine
    retry_seconds: float = RETRY_SECONDS

    def _retry(self, operation: Callable[[int], T], what: str) -> T:
        return retrying(operation, what=what, within_seconds=self.retry_seconds)

    def _read(self, query: Callable[[Connection], T]) -> T:
        """Runs a read, retried across a lost connection."""

        def run(_attempt: int) -> T:
            with self.engine.connect() as conn:
                return query(conn)

        return self._retry(run, "read")

    def _write(self, stmt: Update, what: str) -> bool:
        """Runs a guarded UPDATE that is harmless to repeat (retried); True when it matched
        one row."""

        def run(_attempt: int) -> bool:
            with self.engine.begin() as conn:
                return bool(conn.execute(stmt).rowcount == 1)

        return self._retry(run, what)


class OutageLog:
    """Logging for a periodic pass that a database outage makes fail on every run: the first
    transient failure is one WARNING line (no traceback), repeats are silent, and the first
    success after it is one INFO line. Any other error is logged with its traceback each time.
    Not thread-safe: one per loop."""

    def __init__(self, what: str, logger: logging.Logger) -> None:
        self.what = what
        self.logger = logger
        self.in_outage = False

    def failed(self, exc: BaseException) -> None:
        if not is_transient(exc):
            self.logger.error("%s failed", self.what, exc_info=exc)
            return
        if not self.in_outage:
            self.in_outage = True
            self.logger.warning(
                "%s: database unavailable, retrying quietly until it is back: %s",
                self.what,
                getattr(exc, "orig", exc),
            )

    def succeeded(self) -> None:
        if self.in_outage:
            self.in_outage = False
            self.logger.info("%s: database back", self.what)
