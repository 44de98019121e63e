"""Registry of workers (any launcher, any machine): each ready worker beats into the database,
so /ready, /metrics and the query of waiting tasks know how many are alive without talking to
them; a worker that cannot load its model leaves a failure record saying why.

A row's `info` carries the worker's identity beyond host and pid (the kernel's boot id and the
pid namespace), so a restarted `serve` can tell a dead local worker whose row is still fresh
(it was killed with its parent) from a live one, and count only the live.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import socket
import threading
from pathlib import Path
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Engine,
    Integer,
    String,
    Table,
    Text,
    delete,
    insert,
    select,
    update,
)

from vace_server.clock import Clock, wall_clock_ms
from vace_server.tasks.models import metadata

log = logging.getLogger(__name__)

workers = Table(
    "workers",
    metadata,
    Column("worker_id", String(96), primary_key=True),
    Column("hostname", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("started_ms", BigInteger, nullable=False),
    Column("last_seen_ms", BigInteger, nullable=False),
    Column("info", Text),
)

DAY_MS = 86_400_000
FAILED = "failed"  # info["state"] of a load-failure record
FAILURE_FRESH_MS = 180_000  # a failure not repeated for this long is history


def _read(path: str) -> str | None:
    with contextlib.suppress(OSError):
        return Path(path).read_text().strip() or None
    return None


def _pid_namespace() -> str | None:
    with contextlib.suppress(OSError):
        return os.readlink("/proc/self/ns/pid")
    return None


def local_identity() -> dict[str, str | None]:
    """What tells this machine (boot) and pid namespace apart, where the OS says (Linux)."""
    return {"boot_id": _read("/proc/sys/kernel/random/boot_id"), "pid_ns": _pid_namespace()}


def _pid_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        return True
    return True


def is_stale_local(row: dict[str, Any], *, hostname: str, identity: dict[str, Any]) -> bool:
    """True for a row of this host's pid namespace whose process is gone (or that was
    written before this machine last booted). Rows of other hosts, or without the identity
    (older workers), are judged by their heartbeat age alone."""
    if row.get("hostname") != hostname or not identity.get("pid_ns"):
        return False
    if row.get("pid_ns") != identity["pid_ns"]:
        return False  # another container on a host of the same name: its pids are not ours
    if row.get("boot_id") and identity.get("boot_id") and row["boot_id"] != identity["boot_id"]:
        return True
    return not _pid_running(int(row["pid"]))


def failure_id(model: str, hostname: str | None = None) -> str:
    digest = hashlib.sha256(model.encode()).hexdigest()[:16]
    return f"failed:{(hostname or socket.gethostname())[:64]}:{digest}"


class WorkerRegistry:
    def __init__(self, engine: Engine, *, clock: Clock = wall_clock_ms) -> None:
        self.engine = engine
        self._now = clock
        self._hostname = socket.gethostname()
        self._identity = local_identity()

    def beat(self, worker_id: str, info: dict[str, Any]) -> None:
        """Registers the worker or refreshes its `last_seen_ms`. Side effects: one write."""
        self._upsert(worker_id, {**info, **self._identity})

    def record_failure(self, model: str, error: str, *, served_model: str | None = None) -> None:
        """Records (or refreshes) that this host cannot load `model` (the weights, served as
        `served_model` when a registry names it), and why."""
        info = {"state": FAILED, "model": model, "error": error}
        if served_model is not None:
            info["served_model"] = served_model
        self._upsert(failure_id(model, self._hostname), {**info, **self._identity})

    def clear_failure(self, model: str) -> None:
        """This host loaded `model` after all: its failure record goes."""
        self.remove(failure_id(model, self._hostname))

    def remove(self, worker_id: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(workers).where(workers.c.worker_id == worker_id))

    def alive(self, within_ms: int, *, tidy: bool = True) -> list[dict[str, Any]]:
        """Ready workers seen in the last `within_ms`, less this host's dead ones (whose rows
        are dropped; with `tidy`, so are rows older than a day)."""
        rows = [r for r in self._rows(within_ms, tidy=tidy) if r.get("state") != FAILED]
        stale = [r for r in rows if self._is_stale(r)]
        if stale:
            self._drop([r["worker_id"] for r in stale])
        return [r for r in rows if r not in stale]

    def stale_local(self) -> list[str]:
        """Ids of this host's registered workers whose process is gone (any age)."""
        rows = [r for r in self._rows(DAY_MS) if r.get("state") != FAILED]
        return [r["worker_id"] for r in rows if self._is_stale(r)]

    def failures(self, within_ms: int = FAILURE_FRESH_MS) -> list[dict[str, Any]]:
        """Load failures recorded in the last `within_ms`, newest first."""
        rows = [r for r in self._rows(within_ms, tidy=False) if r.get("state") == FAILED]
        return sorted(rows, key=lambda r: int(r["last_seen_ms"]), reverse=True)

    def _is_stale(self, row: dict[str, Any]) -> bool:
        return is_stale_local(row, hostname=self._hostname, identity=self._identity)

    def _drop(self, ids: list[str]) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(workers).where(workers.c.worker_id.in_(ids)))

    def _upsert(self, worker_id: str, info: dict[str, Any]) -> None:
        now = self._now()
        payload = json.dumps(info)
        with self.engine.begin() as conn:
            done = conn.execute(
                update(workers)
                .where(workers.c.worker_id == worker_id)
                .values(last_seen_ms=now, info=payload, pid=os.getpid())
            ).rowcount
            if not done:
                conn.execute(
                    insert(workers).values(
                        worker_id=worker_id,
                        hostname=self._hostname,
                        pid=os.getpid(),
                        started_ms=now,
                        last_seen_ms=now,
                        info=payload,
                    )
                )

    def _rows(self, within_ms: int, *, tidy: bool = True) -> list[dict[str, Any]]:
        now = self._now()
        with self.engine.begin() as conn:
            if tidy:
                conn.execute(delete(workers).where(workers.c.last_seen_ms < now - DAY_MS))
            rows = conn.execute(
                select(workers).where(workers.c.last_seen_ms >= now - within_ms)
            ).all()
        return [
            {
                **(json.loads(r.info) if r.info else {}),
                "worker_id": r.worker_id,
                "hostname": r.hostname,
                "pid": r.pid,
                "last_seen_ms": r.last_seen_ms,
            }
            for r in rows
        ]


class RegistryBeat:
    """Daemon thread beating `registry` for a worker every `interval` seconds until stopped."""

    def __init__(
        self, registry: WorkerRegistry, worker_id: str, info: dict[str, Any], interval: float
    ) -> None:
        self.registry = registry
        self.worker_id = worker_id
        self.info = info
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="registry-beat", daemon=True)

    def start(self) -> None:
        self.registry.beat(self.worker_id, self.info)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.registry.remove(self.worker_id)

    def _run(self) -> None:
        failing = False
        while not self._stop.wait(self.interval):
            try:
                self.registry.beat(self.worker_id, self.info)
            except Exception as exc:  # the database may be away a while; keep beating
                if not failing:
                    log.warning("worker registry beat failed; retrying: %s", exc)
                failing = True
                continue
            failing = False
