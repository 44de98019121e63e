"""Waking idle workers when a task becomes claimable.

PostgreSQL: whoever makes a task PENDING (create, requeue) sends `NOTIFY vace_tasks` in the
same transaction, so it is delivered exactly when the task becomes visible; each idle worker
holds one dedicated autocommit connection that LISTENs and blocks in `notifies()`. Polling
stays as a slow safety net (and covers the moments the listener reconnects).

SQLite has no such channel (API and workers are separate processes): waiting is a plain sleep
of the polling interval.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from typing import Any, Protocol

from sqlalchemy import Connection, Engine, text

log = logging.getLogger(__name__)

CHANNEL = "vace_tasks"
# With LISTEN, polling only guards against a notification we could not have seen; it also
# bounds how long a worker told to stop sits in a wait.
LISTEN_POLL_SECONDS = 2.0
RECONNECT_MAX_SECONDS = 5.0


def notify_work(conn: Connection) -> None:
    """Tells listening workers that a task became claimable once `conn`'s transaction commits
    (PostgreSQL; nothing elsewhere). Side effects: one NOTIFY."""
    if conn.dialect.name == "postgresql":
        conn.execute(text(f"NOTIFY {CHANNEL}"))


class WorkWaiter(Protocol):
    def wait(self, timeout: float) -> bool:
        """Blocks until there may be work, at most about `timeout` seconds.
        Returns True when woken by a notification (or a fresh listen), False otherwise."""
        ...

    def close(self) -> None: ...


class SleepWaiter:
    """No notification channel: waiting is sleeping the polling interval."""

    def wait(self, timeout: float) -> bool:
        time.sleep(timeout)
        return False

    def close(self) -> None:
        pass


class PostgresListener:
    """LISTENs on `CHANNEL` over its own autocommit psycopg connection (not from the pool: a
    LISTEN belongs to a session). Reconnects with backoff after the server went away. One
    thread waits at a time (a worker loop)."""

    def __init__(self, engine: Engine, *, poll_seconds: float = LISTEN_POLL_SECONDS) -> None:
        _args, params = engine.dialect.create_connect_args(engine.url)
        params.pop("context", None)  # SQLAlchemy's adapter map; a plain connection will do
        params.setdefault("connect_timeout", 10)
        self._params: dict[str, Any] = dict(params)
        self.poll_seconds = poll_seconds
        self._conn: Any = None
        self._lock = threading.Lock()
        self._backoff = 0.0

    def wait(self, timeout: float) -> bool:
        """Returns True on a notification (all pending ones are consumed) or right after
        (re)connecting, since anything committed before the LISTEN was not seen; False after
        `max(timeout, poll_seconds)` without one, or after a failed reconnect attempt."""
        timeout = max(timeout, self.poll_seconds)
        with self._lock:
            if self._conn is None:
                return self._connect(timeout)
            try:
                woken = any(True for _ in self._conn.notifies(timeout=timeout, stop_after=1))
                if woken:
                    for _ in self._conn.notifies(timeout=0):
                        pass  # one claim attempt answers any number of notifications
                return woken
            except Exception as exc:  # psycopg.OperationalError: the server went away
                log.warning("task listener lost its database connection: %s", exc)
                self._drop()
                return False

    def close(self) -> None:
        with self._lock:
            self._drop()

    def _connect(self, timeout: float) -> bool:
        import psycopg  # only PostgreSQL deployments need the driver

        try:
            conn = psycopg.connect(**self._params, autocommit=True)
            conn.execute(f"LISTEN {CHANNEL}")
        except Exception as exc:
            self._backoff = min(RECONNECT_MAX_SECONDS, max(0.1, self._backoff * 2))
            log.warning("task listener cannot connect (retry in %.1fs): %s", self._backoff, exc)
            time.sleep(min(timeout, self._backoff))
            return False
        if self._backoff:
            log.info("task listener reconnected")
        self._conn, self._backoff = conn, 0.0
        return True

    def _drop(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
            self._conn = None


def waiter_for(engine: Engine) -> WorkWaiter:
    """The right waiter for the engine's database."""
    if engine.dialect.name == "postgresql":
        return PostgresListener(engine)
    return SleepWaiter()
