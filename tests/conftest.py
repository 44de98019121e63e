"""Fixtures shared across the suite: a migrated SQLite task store on a fake clock."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.clock import FakeClock
from vace_server.tasks import db
from vace_server.tasks.store import TaskStore


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'tasks.db'}"


@pytest.fixture
def store(database_url: str, clock: FakeClock) -> Iterator[TaskStore]:
    engine = db.make_engine(database_url)
    db.upgrade(engine)
    yield TaskStore(engine, lease_ms=10_000, max_attempts=2, retention_ms=3_600_000, clock=clock)
    engine.dispose()
