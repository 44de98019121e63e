from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from vace_server.tasks import db
from vace_server.tasks.store import TaskStore


class FakeClock:
    def __init__(self, start_ms: int = 1_700_000_000_000) -> None:
        self.ms = start_ms

    def __call__(self) -> int:
        return self.ms

    def advance(self, ms: int) -> None:
        self.ms += ms


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
