"""A create answers PENDING with what it inserted, and never reports a failure once its row
is committed: the database failing after the commit, or a worker claiming the task at once,
change nothing in the answer, and the task exists exactly once."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event, func, select

from tests.api.conftest import auth
from tests.api.test_http import BODY, CREATE
from vace_server.api.context import AppContext
from vace_server.tasks.models import tasks
from vace_server.tasks.store import TaskStore


def task_count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(tasks)).scalar_one())


@contextmanager
def database_fails_after_commit(engine: Engine) -> Iterator[list[str]]:
    """From the first COMMIT on, every statement on `engine` fails as a lost disk would
    (a real sqlite3 error, which SQLAlchemy wraps like any other). Yields the statements
    that were refused."""
    committed = False
    refused: list[str] = []

    def on_commit(_conn: Any) -> None:
        nonlocal committed
        committed = True

    def before_execute(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if committed:
            refused.append(statement)
            raise sqlite3.OperationalError("disk I/O error")

    event.listen(engine, "commit", on_commit)
    event.listen(engine, "before_cursor_execute", before_execute)
    try:
        yield refused
    finally:
        event.remove(engine, "before_cursor_execute", before_execute)
        event.remove(engine, "commit", on_commit)


def test_a_database_failure_after_the_commit_still_answers_pending(
    client: TestClient, context: AppContext
) -> None:
    engine = context.store.engine
    with database_fails_after_commit(engine) as refused:
        r = client.post(CREATE, json=BODY, headers=auth())
        # the fault is live: any later database use by this request would have failed
        assert client.get("/api/v1/tasks/x", headers=auth()).status_code == 503
    assert refused
    assert r.status_code == 200, r.text
    assert r.json()["output"]["task_status"] == "PENDING"
    assert task_count(engine) == 1
    task_id = r.json()["output"]["task_id"]
    query = client.get(f"/api/v1/tasks/{task_id}", headers=auth())
    assert query.json()["output"]["task_status"] == "PENDING"


def test_a_worker_claiming_at_once_does_not_make_the_answer_running(
    client: TestClient, context: AppContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = context.store
    original = TaskStore._retry
    claimed: list[str] = []

    def retry_then_claim(self: TaskStore, operation: Any, what: str) -> Any:
        result = original(self, operation, what)
        if what == "create":  # right after the commit, before the response is built
            claim = self.claim("fast-worker")
            assert claim is not None
            claimed.append(claim.task.id)
        return result

    monkeypatch.setattr(TaskStore, "_retry", retry_then_claim)
    r = client.post(CREATE, json=BODY, headers=auth())
    monkeypatch.undo()
    assert r.status_code == 200, r.text
    output = r.json()["output"]
    assert output["task_status"] == "PENDING"
    assert claimed == [output["task_id"]]
    task = store.get(output["task_id"])
    assert task is not None and task.status.value == "RUNNING"
    assert task_count(store.engine) == 1
