"""Best-effort writes: a failing write is retried with the newest state and never raises; a
final store call is retried across transient database errors only."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from sqlalchemy.exc import IntegrityError, OperationalError

from vace_server.worker.bookkeeping import LatestWriter, settle


def _outage() -> OperationalError:
    return OperationalError("UPDATE", {}, Exception("connection refused"))


def test_the_writer_retries_the_newest_state_and_never_raises() -> None:
    written: list[dict[str, Any]] = []
    down = threading.Event()
    down.set()

    def write(state: dict[str, Any]) -> None:
        if down.is_set():
            raise _outage()
        written.append(state)

    writer = LatestWriter(write, what="progress", retry_delay=0.01)
    writer.submit({"step": 1})
    assert not writer.wait_idle(0.1)  # the database is away: still pending, no exception
    writer.submit({"step": 2})  # replaces step 1
    down.clear()
    assert writer.wait_idle(5)
    assert written == [{"step": 2}]
    writer.submit({"step": 3})
    assert writer.wait_idle(5)
    writer.close()
    assert written == [{"step": 2}, {"step": 3}]


def test_settle_retries_transient_errors_until_the_database_answers() -> None:
    calls = {"n": 0}
    slept: list[float] = []

    def finish() -> bool:
        calls["n"] += 1
        if calls["n"] < 4:
            raise _outage()
        return True

    assert settle(finish, what="success", deadline=float("inf"), sleep=slept.append)
    assert calls["n"] == 4 and slept == [1.0, 2.0, 4.0]


def test_settle_gives_up_at_the_deadline_and_at_once_for_real_errors() -> None:
    def down() -> bool:
        raise _outage()

    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    with pytest.raises(OperationalError):
        settle(down, what="success", deadline=10.0, sleep=sleep, clock=lambda: now[0])
    assert now[0] <= 10.0

    def broken() -> bool:
        raise IntegrityError("UPDATE", {}, Exception("constraint"))

    with pytest.raises(IntegrityError):
        settle(broken, what="success", deadline=float("inf"), sleep=sleep)
