"""Waking idle workers when a task becomes claimable.

PostgreSQL: whoever makes a task PENDING (create, requeue) sends `NOTIFY vace_tasks` in the
same transaction, so it is delivered exactly when the task becomes visible; each idle worker
holds one dedicated autocommit connection that LISTENs and blocks in `notifies()`. Polling
stays as a slow safety net (and covers the moments the listener reconnects).

SQLite has no such channel, but its API and workers share one machine (the database is a
file): each idle worker binds a Unix datagram socket in a folder named after the database
file, and whoever made a task claimable sends one byte to every socket there once its
transaction has committed (`LocalWaker`). A send never blocks and never fails the caller; a
socket nobody listens on any more is removed. Polling stays as the safety net (a wake lost to
a full buffer, a worker on a database path the sender spells differently).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import logging
import os
import secrets
import select
import socket
import stat
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import Connection, Engine, text

log = logging.getLogger(__name__)

CHANNEL = "vace_tasks"
# With LISTEN, polling only guards against a notification we could not have seen; it also
# bounds how long a worker told to stop sits in a wait.
LISTEN_POLL_SECONDS = 2.0
# SQLite's safety net: shorter than PostgreSQL's, since a wake-up can also be lost to a full
# socket buffer; still four times rarer than the plain polling it replaces.
LOCAL_POLL_SECONDS = 1.0
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


# A Unix socket path is at most 107 bytes (sun_path); ours stay far below under /tmp.
SUN_PATH_MAX = 107
SOCKET_SUFFIX = ".wake"


def wake_folder(engine: Engine) -> Path | None:
    """Where the wake sockets of the engine's SQLite file live: a private folder under the
    temporary directory, named after the file's real path (short, so socket paths fit);
    None for PostgreSQL and in-memory SQLite."""
    database = engine.url.database if engine.dialect.name == "sqlite" else None
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    digest = hashlib.sha256(os.path.realpath(database).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"vace-wake-{os.getuid()}-{digest}"


def _private_folder(folder: Path) -> bool:
    """Creates `folder` (0700) if needed. False when it is not ours to use: another user's,
    a symlink, or not a folder (then local wake-ups are off and polling carries on)."""
    with contextlib.suppress(FileExistsError):
        folder.mkdir(mode=0o700)
    info = folder.lstat()
    return stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid()


class LocalWaker:
    """The sender: one byte to each worker socket in `folder`, never blocking."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.setblocking(False)

    def wake(self) -> int:
        """Returns how many sockets were sent to. Never raises (a missed wake-up costs one
        polling interval, never a request)."""
        try:
            names = [n for n in os.listdir(self.folder) if n.endswith(SOCKET_SUFFIX)]
        except OSError:
            return 0  # no worker has listened yet
        sent = 0
        for name in names:
            path = str(self.folder / name)
            try:
                self._sock.sendto(b"w", path)
                sent += 1
            except BlockingIOError:
                sent += 1  # its buffer is full: it has wake-ups pending already
            except (ConnectionRefusedError, FileNotFoundError):
                with contextlib.suppress(OSError):
                    os.unlink(path)  # its worker is gone (killed before it could clean up)
            except OSError as exc:
                log.debug("wake-up to %s failed: %s", path, exc)
        return sent

    def close(self) -> None:
        self._sock.close()


class SocketWaiter:
    """The receiver: one bound datagram socket per worker loop, created on the first wait
    (which returns True: anything committed before it existed was not announced to it)."""

    def __init__(self, folder: Path, *, poll_seconds: float) -> None:
        self.folder = folder
        self.poll_seconds = poll_seconds
        self._sock: socket.socket | None = None
        self._path = ""
        self._off = False  # binding failed once: plain polling from then on

    def wait(self, timeout: float) -> bool:
        if self._off:
            time.sleep(timeout)
            return False
        if self._sock is None:
            return self._bind(timeout)
        ready, _, _ = select.select([self._sock], [], [], max(timeout, self.poll_seconds))
        if not ready:
            return False
        with contextlib.suppress(BlockingIOError):
            while True:
                self._sock.recv(16)  # one claim attempt answers any number of wake-ups
        return True

    def _bind(self, timeout: float) -> bool:
        path = str(self.folder / f"{os.getpid()}-{secrets.token_hex(4)}{SOCKET_SUFFIX}")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            if len(path.encode()) > SUN_PATH_MAX or not _private_folder(self.folder):
                raise OSError(errno.ENAMETOOLONG, f"cannot use {self.folder} for wake-ups")
            sock.bind(path)
        except OSError as exc:
            sock.close()
            log.warning("local wake-ups are off, polling instead: %s", exc)
            self._off = True
            time.sleep(timeout)
            return False
        sock.setblocking(False)
        self._sock, self._path = sock, path
        return True

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
            with contextlib.suppress(OSError):
                os.unlink(self._path)


def local_waker(engine: Engine) -> LocalWaker | None:
    """The sender for the engine's SQLite file (None where wake-ups go through the database
    or nowhere)."""
    folder = wake_folder(engine)
    return None if folder is None else LocalWaker(folder)


def waiter_for(
    engine: Engine, *, local: bool = True, poll_seconds: float = LOCAL_POLL_SECONDS
) -> WorkWaiter:
    """The right waiter for the engine's database; `local=False` turns SQLite's wake-ups off;
    `poll_seconds` is the local waiter's safety-net interval (at least the caller's own)."""
    if engine.dialect.name == "postgresql":
        return PostgresListener(engine)
    folder = wake_folder(engine) if local else None
    if folder is None:
        return SleepWaiter()
    return SocketWaiter(folder, poll_seconds=poll_seconds)
