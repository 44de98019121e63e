"""tasks/db.make_engine: a SQLite file's pool keeps a connection per concurrent reader (the API's
thread pool), so steady concurrent reads open no new connections."""

from __future__ import annotations

import threading
from pathlib import Path

from sqlalchemy import event, text

from vace_server.tasks import db


def test_concurrent_readers_reuse_their_sqlite_connections(tmp_path: Path) -> None:
    engine = db.make_engine(f"sqlite:///{tmp_path / 'sub' / 'tasks.db'}")
    opened: list[int] = []
    event.listen(engine, "connect", lambda *_a: opened.append(1))
    readers = 12  # more than SQLAlchemy's default pool of 5
    barrier = threading.Barrier(readers)

    def read(_n: int) -> None:
        for _ in range(20):
            with engine.connect() as conn:
                barrier.wait(timeout=10)  # every reader holds a connection at once
                conn.execute(text("SELECT 1")).scalar_one()

    threads = [threading.Thread(target=read, args=(n,)) for n in range(readers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert (tmp_path / "sub").is_dir()
    assert len(opened) == readers  # one each, kept: none opened and closed per use
    assert engine.pool.size() == db.SQLITE_POOL_SIZE  # type: ignore[attr-defined]
    engine.dispose()


def test_in_memory_sqlite_keeps_its_own_pool() -> None:
    engine = db.make_engine("sqlite://")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT 1")).scalar_one() == 1
    assert type(engine.pool).__name__ == "SingletonThreadPool"
