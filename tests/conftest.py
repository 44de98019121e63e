"""Fixtures shared across the suite: a migrated task store on a fake clock, on SQLite and on a
real PostgreSQL server started by the test run (skipped, saying why, without its binaries)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import postgres as pg
from tests.support.clock import FakeClock
from tests.support.torch_threads import single_torch_thread
from vace_server.tasks import db
from vace_server.tasks.store import TaskStore
from vace_server.tasks.uploads import UploadStore

E2E_DIR = Path(__file__).resolve().parent / "e2e"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test under tests/e2e/ is `e2e`, by its path: a new e2e file needs no marker of its
    own to stay out of the fast run (`pytest -m "not e2e and not slow"`)."""
    for item in items:
        if E2E_DIR in item.path.resolve().parents:
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(autouse=True)
def _root_logging_restored() -> Iterator[None]:
    """Each test gets the root logger back as it found it: a command run in-process (a CLI
    test's `serve`) configures logging onto its runner's stream, which closes when the command
    returns; left installed, that handler breaks the next test's log lines."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture
def one_torch_thread() -> Iterator[None]:
    """One torch thread for the test (tests/support/torch_threads.py)."""
    with single_torch_thread():
        yield


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(scope="session")
def postgres() -> Iterator[pg.PostgresCluster]:
    """One throwaway PostgreSQL cluster for the whole run (loopback, free port, temp folder)."""
    reason = pg.missing_reason()
    if reason:
        pytest.skip(reason)
    cluster = pg.PostgresCluster.create()
    try:
        yield cluster
    finally:
        cluster.destroy()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh database per test: a SQLite file, or a new PostgreSQL database already at the
    newest schema (dropped afterwards)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'tasks.db'}"
        return
    cluster: pg.PostgresCluster = request.getfixturevalue("postgres")
    url = cluster.migrated_database()
    yield url
    cluster.drop_database(url)


@pytest.fixture
def store(database_url: str, clock: FakeClock) -> Iterator[TaskStore]:
    engine = db.make_engine(database_url)
    db.upgrade(engine)
    store = TaskStore(engine, lease_ms=10_000, max_attempts=2, retention_ms=3_600_000, clock=clock)
    yield store
    store.close()


@pytest.fixture
def uploads(database_url: str, clock: FakeClock, tmp_path: Path) -> Iterator[UploadStore]:
    """The upload store on the same fresh database, files under `tmp_path/uploads`."""
    engine = db.make_engine(database_url)
    db.upgrade(engine)
    yield UploadStore(engine, tmp_path / "uploads", clock=clock)
    engine.dispose()


@pytest.fixture(scope="session")
def tiny_lora(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A LoRA file for the tiny model (tests/support/tiny_lora.py)."""
    from tests.support.tiny_lora import save_tiny_lora  # imports torch: only when used

    return save_tiny_lora(tmp_path_factory.mktemp("lora"), seed=11)
