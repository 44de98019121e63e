"""Direct reads of a live server's task store, for tests that check what the API hides:
attempts per task, which worker holds a task, worker processes in the registry."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from sqlalchemy import create_engine, text

from tests.support.waiting import wait_until


class TaskDb:
    def __init__(self, database_url: str) -> None:
        self.engine = create_engine(database_url)

    def close(self) -> None:
        self.engine.dispose()

    def tasks(self, ids: list[str] | None = None) -> dict[str, dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                text("SELECT id, status, attempts, worker_id, output_key FROM tasks")
            ).mappings()
            found = {r["id"]: dict(r) for r in rows}
        return found if ids is None else {i: found[i] for i in ids}

    def task(self, task_id: str) -> dict[str, Any]:
        return self.tasks([task_id])[task_id]

    def workers(self) -> dict[str, dict[str, Any]]:
        """The registry: worker id → {pid, hostname, info...} (every row, stale or not)."""
        with self.engine.connect() as conn:
            rows = conn.execute(text("SELECT worker_id, pid, hostname, info FROM workers"))
            return {
                r.worker_id: {"pid": r.pid, "hostname": r.hostname, **json.loads(r.info or "{}")}
                for r in rows
            }

    def wait_for(
        self, what: str, check: Callable[[], Any], timeout: float = 60.0, every: float = 0.1
    ) -> Any:
        """Polls `check` until it returns something truthy; returns that."""
        return wait_until(check, timeout, every=every, what=what)
