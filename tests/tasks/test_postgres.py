"""PostgreSQL specifics, on a real server started by the test run: migrations (types, several
replicas migrating at once), prompt wake-ups through LISTEN/NOTIFY, riding out a restart; and
their SQLite counterparts (polling, no retry of real errors)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import inspect, text
from sqlalchemy.exc import OperationalError

from tests.support.postgres import PostgresCluster
from tests.tasks.test_store import SPEC
from vace_server.tasks import db
from vace_server.tasks.status import TaskStatus
from vace_server.tasks.store import TaskStore


@pytest.fixture
def pg_store(postgres: PostgresCluster) -> Iterator[TaskStore]:
    url = postgres.migrated_database()
    store = TaskStore(db.make_engine(url), lease_ms=10_000, max_attempts=2)
    yield store
    store.close()
    postgres.drop_database(url)


def _create(store: TaskStore) -> str:
    return store.create(SPEC, account="a", api_key_id="k", request_id="r").id


def test_replicas_migrating_at_once_take_turns(postgres: PostgresCluster) -> None:
    url = postgres.create_database()  # empty: every replica finds work to do
    engines = [db.make_engine(url) for _ in range(4)]
    start = threading.Barrier(len(engines))
    errors: list[BaseException] = []

    def migrate(engine: object) -> None:
        start.wait()
        try:
            db.upgrade(engine)  # type: ignore[arg-type]
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=migrate, args=(e,)) for e in engines]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert errors == []
    with engines[0].connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one() == "0005"
        columns = {c["name"]: c["type"] for c in inspect(conn).get_columns("tasks")}
    assert str(columns["created_ms"]) == "BIGINT" and str(columns["lease_until_ms"]) == "BIGINT"
    assert str(columns["cancel_requested"]) == "BOOLEAN"
    for engine in engines:
        engine.dispose()
    postgres.drop_database(url)


def test_downgrade_and_upgrade_again(postgres: PostgresCluster) -> None:
    url = postgres.migrated_database()
    engine = db.make_engine(url)
    cfg = db.alembic_config(url)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "base")
    with engine.connect() as conn:
        assert set(inspect(conn).get_table_names()) == {"alembic_version"}
    db.upgrade(engine)
    with engine.connect() as conn:
        tables = set(inspect(conn).get_table_names())
    assert {"tasks", "uploads", "workers", "webhooks"} <= tables
    engine.dispose()
    postgres.drop_database(url)


def test_idle_worker_is_woken_by_a_new_task_not_the_poll(pg_store: TaskStore) -> None:
    assert pg_store.wait_for_work(0.1)  # first call: starts listening ("maybe work")
    started = time.monotonic()
    assert not pg_store.wait_for_work(0.1)  # nothing happened: waits out the safety net
    assert time.monotonic() - started >= 1.5

    woke: list[float] = []
    waiter = threading.Thread(target=lambda: woke.append(_timed_wait(pg_store, 30.0)))
    waiter.start()
    time.sleep(0.3)
    created = time.monotonic()
    _create(pg_store)
    waiter.join(timeout=10)
    assert woke and woke[0] - created < 0.5  # promptly, long before the 2 s safety net


def test_requeue_wakes_a_worker(pg_store: TaskStore) -> None:
    _create(pg_store)
    assert pg_store.claim("w1") is not None
    pg_store.wait_for_work(0.1)  # listening from here on (consumes the create's NOTIFY)
    while pg_store.wait_for_work(0.0):
        pass
    pg_store.release_worker("w1")
    started = time.monotonic()
    assert pg_store.wait_for_work(5.0)
    assert time.monotonic() - started < 0.5
    assert pg_store.claim("w2") is not None


def test_many_notifications_wake_once(pg_store: TaskStore) -> None:
    pg_store.wait_for_work(0.1)
    for _ in range(5):
        _create(pg_store)
    assert pg_store.wait_for_work(1.0)
    started = time.monotonic()
    assert not pg_store.wait_for_work(0.1)  # all five consumed by the first wake-up
    assert time.monotonic() - started >= 1.5


def test_store_and_listener_survive_a_restart(
    pg_store: TaskStore, postgres: PostgresCluster
) -> None:
    first = _create(pg_store)
    assert pg_store.wait_for_work(0.1)  # listening
    postgres.restart()
    # The pool's connections are dead; pre-ping replaces them: no failed call.
    task = pg_store.get(first)
    assert task is not None and task.status is TaskStatus.PENDING
    assert not pg_store.wait_for_work(0.1)  # notices the lost listener ...
    assert pg_store.wait_for_work(0.1)  # ... and listens again
    woke: list[float] = []
    waiter = threading.Thread(target=lambda: woke.append(_timed_wait(pg_store, 30.0)))
    waiter.start()
    time.sleep(0.3)
    created = time.monotonic()
    _create(pg_store)
    waiter.join(timeout=10)
    assert woke and woke[0] - created < 0.5


def test_calls_wait_out_a_short_outage(pg_store: TaskStore, postgres: PostgresCluster) -> None:
    first = _create(pg_store)
    claim = pg_store.claim("w1")
    assert claim is not None
    postgres.stop()
    threading.Timer(1.5, postgres.start).start()
    started = time.monotonic()
    second = _create(pg_store)  # blocks until the server is back, then succeeds once
    assert time.monotonic() - started >= 1.0
    assert pg_store.set_progress(claim, {"stage": "denoising", "percent": 50})
    assert pg_store.succeed(
        claim, output_key="k.mp4", output_seconds=1.0, actual_prompt=None, effective={}
    )
    done = pg_store.get(first)
    assert done is not None and done.status is TaskStatus.SUCCEEDED
    assert pg_store.count_by_status() == {"SUCCEEDED": 1, "PENDING": 1}
    assert pg_store.get(second) is not None


def test_a_long_outage_still_raises(postgres: PostgresCluster) -> None:
    url = postgres.migrated_database()
    store = TaskStore(db.make_engine(url), retry_seconds=1.0)
    store.count_by_status()
    postgres.stop()
    try:
        with pytest.raises(OperationalError):
            store.count_by_status()
    finally:
        postgres.start()
    assert store.count_by_status() == {}
    store.close()
    postgres.drop_database(url)


def _timed_wait(store: TaskStore, timeout: float) -> float:
    store.wait_for_work(timeout)
    return time.monotonic()


def test_sqlite_has_no_channel_so_waiting_is_the_polling_sleep(tmp_path: Path) -> None:
    store = TaskStore(db.make_engine(f"sqlite:///{tmp_path / 'tasks.db'}"))
    started = time.monotonic()
    assert not store.wait_for_work(0.2)
    assert 0.2 <= time.monotonic() - started < 1.0
    store.close()


def test_only_transient_errors_are_retried(tmp_path: Path) -> None:
    store = TaskStore(db.make_engine(f"sqlite:///{tmp_path / 'unmigrated.db'}"))
    started = time.monotonic()
    with pytest.raises(OperationalError, match="no such table"):
        store.count_by_status()  # a missing schema is no outage: fails at once
    assert time.monotonic() - started < 1.0
    store.close()
