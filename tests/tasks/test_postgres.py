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
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one() == "0007"
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

    # Woken by the create, not by the poll: a 30 s wait that returns True (a notification;
    # the safety net would return False) and well inside its 30 s. Whether the waiter blocks
    # before or after the create does not matter: the NOTIFY waits on its connection.
    _assert_woken_by_a_create(pg_store)


def test_requeue_wakes_a_worker(pg_store: TaskStore) -> None:
    _create(pg_store)
    assert pg_store.claim("w1") is not None
    pg_store.wait_for_work(0.1)  # listening from here on (consumes the create's NOTIFY)
    while pg_store.wait_for_work(0.0):
        pass
    pg_store.release_worker("w1")
    assert pg_store.wait_for_work(30.0)  # True: the requeue's NOTIFY, not the 30 s timeout
    assert pg_store.claim("w2") is not None


def test_many_notifications_wake_once(pg_store: TaskStore) -> None:
    pg_store.wait_for_work(0.1)
    for _ in range(5):
        _create(pg_store)
    assert pg_store.wait_for_work(30.0)
    # Each wake-up consumes every notification that has reached the listener by then. All
    # five usually have (one wake-up); on a loaded machine a late one can wake it once more,
    # so the test counts: fewer wake-ups than notifications (without the draining there
    # would be exactly five), then quiet until the safety net.
    wakes = 1
    while True:
        started = time.monotonic()
        if not pg_store.wait_for_work(0.1):
            break
        wakes += 1
        assert wakes < 5, "one wake-up per notification: the burst was not drained"
    assert time.monotonic() - started >= 1.5  # the quiet wait ran out the safety net


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
    _assert_woken_by_a_create(pg_store)


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


def _assert_woken_by_a_create(store: TaskStore) -> None:
    """A waiter blocked in a 30 s `wait_for_work` returns True (woken by a notification, not
    the timeout) once a task is created, long before those 30 s are up."""
    woke: list[bool] = []
    waiter = threading.Thread(target=lambda: woke.append(store.wait_for_work(30.0)))
    waiter.start()
    _create(store)
    waiter.join(timeout=25)
    assert not waiter.is_alive(), "the create did not wake the waiter"
    assert woke == [True]


def _recorded_sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """time.sleep replaced by a recorder: what the code would have slept, without sleeping."""
    sleeps: list[float] = []
    monkeypatch.setattr(time, "sleep", sleeps.append)
    return sleeps


def test_in_memory_sqlite_has_no_channel_so_waiting_is_the_polling_sleep(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # (A SQLite file has local wake-ups: tests/tasks/test_wakeup.py.)
    store = TaskStore(db.make_engine("sqlite://"))
    sleeps = _recorded_sleeps(monkeypatch)
    assert not store.wait_for_work(0.2)
    assert sleeps == [0.2]  # one plain sleep of the polling interval, nothing more
    store.close()


def test_only_transient_errors_are_retried(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = TaskStore(db.make_engine(f"sqlite:///{tmp_path / 'unmigrated.db'}"))
    sleeps = _recorded_sleeps(monkeypatch)
    with pytest.raises(OperationalError, match="no such table"):
        store.count_by_status()  # a missing schema is no outage: fails at once
    assert sleeps == []  # no retry delay: the first failure was the answer
    store.close()
