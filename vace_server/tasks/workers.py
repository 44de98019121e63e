"""Registry of live workers (any launcher, any machine): each worker beats into the database,
so /ready and /metrics know how many are alive without talking to them."""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
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

from vace_server.tasks.models import metadata
from vace_server.tasks.store import Clock, wall_clock_ms

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


class WorkerRegistry:
    def __init__(self, engine: Engine, *, clock: Clock = wall_clock_ms) -> None:
        self.engine = engine
        self._now = clock

    def beat(self, worker_id: str, info: dict[str, Any]) -> None:
        """Registers the worker or refreshes its `last_seen_ms`. Side effects: one write."""
        now = self._now()
        payload = json.dumps(info)
        with self.engine.begin() as conn:
            done = conn.execute(
                update(workers)
                .where(workers.c.worker_id == worker_id)
                .values(last_seen_ms=now, info=payload)
            ).rowcount
            if not done:
                conn.execute(
                    insert(workers).values(
                        worker_id=worker_id,
                        hostname=socket.gethostname(),
                        pid=os.getpid(),
                        started_ms=now,
                        last_seen_ms=now,
                        info=payload,
                    )
                )

    def remove(self, worker_id: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(workers).where(workers.c.worker_id == worker_id))

    def alive(self, within_ms: int) -> list[dict[str, Any]]:
        """Workers seen in the last `within_ms`; stale rows older than a day are dropped."""
        now = self._now()
        with self.engine.begin() as conn:
            conn.execute(delete(workers).where(workers.c.last_seen_ms < now - 86_400_000))
            rows = conn.execute(
                select(workers).where(workers.c.last_seen_ms >= now - within_ms)
            ).all()
        return [
            {
                "worker_id": r.worker_id,
                "hostname": r.hostname,
                "pid": r.pid,
                "last_seen_ms": r.last_seen_ms,
                **(json.loads(r.info) if r.info else {}),
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
        while not self._stop.wait(self.interval):
            try:
                self.registry.beat(self.worker_id, self.info)
            except Exception:  # the database may be briefly away; keep beating
                log.exception("worker registry beat failed")
