"""Local wake-ups on a SQLite file: a worker blocked in `wait_for_work` is woken by a create or a
requeue in another store (another process in production) instead of waiting out its polling
interval; dead sockets are cleaned up; an unusable folder falls back to polling."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.tasks.test_store import SPEC
from vace_server.tasks import db
from vace_server.tasks.store import TaskStore
from vace_server.tasks.wakeup import (
    SOCKET_SUFFIX,
    LocalWaker,
    SleepWaiter,
    SocketWaiter,
    waiter_for,
    wake_folder,
)


@pytest.fixture
def url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'tasks.db'}"
    engine = db.make_engine(url)
    db.upgrade(engine)
    engine.dispose()
    return url


@pytest.fixture
def stores(url: str) -> Iterator[tuple[TaskStore, TaskStore]]:
    """Two stores on one file: the API's and a worker's."""
    api, worker = TaskStore(db.make_engine(url)), TaskStore(db.make_engine(url))
    yield api, worker
    api.close()
    worker.close()


def _wait_in_thread(store: TaskStore, seconds: float) -> tuple[threading.Thread, list[bool]]:
    woke: list[bool] = []
    thread = threading.Thread(target=lambda: woke.append(store.wait_for_work(seconds)))
    thread.start()
    return thread, woke


def test_a_create_wakes_a_waiting_worker(stores: tuple[TaskStore, TaskStore]) -> None:
    api, worker = stores
    assert worker.wait_for_work(0.01)  # first call: binds its socket ("maybe work")
    thread, woke = _wait_in_thread(worker, 60.0)
    api.create(SPEC, account="a", api_key_id="k", request_id="r")
    thread.join(timeout=30)
    assert not thread.is_alive(), "the create did not wake the waiter"
    assert woke == [True]  # True: the wake-up, not the 60 s timeout
    assert worker.claim("w") is not None


def test_a_requeue_wakes_a_waiting_worker(stores: tuple[TaskStore, TaskStore]) -> None:
    api, worker = stores
    api.create(SPEC, account="a", api_key_id="k", request_id="r")
    claim = worker.claim("w")
    assert claim is not None and worker.wait_for_work(0.01)
    while worker.wait_for_work(0.0):
        pass  # consume the create's wake-up
    thread, woke = _wait_in_thread(worker, 60.0)
    assert api.release_worker("w") == 1
    thread.join(timeout=30)
    assert woke == [True]


def test_without_a_wake_up_the_wait_is_the_safety_net(
    stores: tuple[TaskStore, TaskStore],
) -> None:
    _api, worker = stores
    assert worker.wait_for_work(0.01)
    assert not worker.wait_for_work(0.01)  # nothing happened: False after the poll interval


def test_a_closed_waiter_removes_its_socket(url: str) -> None:
    engine = db.make_engine(url)
    folder = wake_folder(engine)
    assert folder is not None
    waiter = waiter_for(engine)
    assert isinstance(waiter, SocketWaiter) and waiter.wait(0.01)
    mine = [n for n in os.listdir(folder) if n.startswith(f"{os.getpid()}-")]
    assert mine
    waiter.close()
    assert not set(mine) & set(os.listdir(folder))
    engine.dispose()


def test_a_dead_socket_is_removed_by_the_sender(url: str) -> None:
    engine = db.make_engine(url)
    folder = wake_folder(engine)
    assert folder is not None and LocalWaker(folder).wake() == 0
    folder.mkdir(mode=0o700, exist_ok=True)
    dead = folder / f"dead{SOCKET_SUFFIX}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(dead))
    sock.close()  # bound, then gone without unlinking: a killed worker
    waker = LocalWaker(folder)
    assert waker.wake() == 0
    assert not dead.exists()
    waker.close()
    engine.dispose()


def test_a_folder_that_is_not_ours_means_polling(
    url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = db.make_engine(url)
    folder = wake_folder(engine)
    assert folder is not None
    (tmp_path / "elsewhere").mkdir()
    if folder.exists():
        for name in os.listdir(folder):
            os.unlink(folder / name)
        folder.rmdir()
    folder.symlink_to(tmp_path / "elsewhere")  # someone planted a link: not used
    try:
        waiter = SocketWaiter(folder, poll_seconds=0.0)
        assert not waiter.wait(0.01)
        assert not waiter.wait(0.01)  # stays off, a plain sleep
        assert os.listdir(tmp_path / "elsewhere") == []
    finally:
        folder.unlink()
    engine.dispose()


def test_postgres_and_memory_have_no_local_folder() -> None:
    engine = db.make_engine("sqlite://")
    assert wake_folder(engine) is None
    assert isinstance(waiter_for(engine), SleepWaiter)
    engine.dispose()


def test_local_wakeups_off_means_polling(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    store = TaskStore(db.make_engine(url), local_wakeups=False)
    sleeps: list[float] = []
    monkeypatch.setattr("time.sleep", sleeps.append)
    assert not store.wait_for_work(0.2)
    assert sleeps == [0.2]  # a plain sleep of the polling interval
    store.close()


def test_the_setting_reaches_the_store(tmp_path: Path) -> None:
    from vace_server.runtime import open_store
    from vace_server.settings import Settings

    settings = Settings(data_dir=tmp_path, local_wakeups=False)
    assert settings.queue.local_wakeups is False
    store = open_store(settings)
    assert store.local_wakeups is False
    store.close()
