"""OutageLog: a periodic pass failing on every run during a database outage logs one line, not
a traceback per pass; other errors keep their tracebacks."""

from __future__ import annotations

import logging
import sqlite3

import pytest
from sqlalchemy.exc import OperationalError

from vace_server.tasks.transient import OutageLog

LOGGER = "tests.outage"


def _lost_connection() -> OperationalError:
    return OperationalError("SELECT 1", {}, sqlite3.OperationalError("database is locked"))


def test_an_outage_is_one_warning_then_one_info(caplog: pytest.LogCaptureFixture) -> None:
    outage = OutageLog("maintenance pass", logging.getLogger(LOGGER))
    with caplog.at_level(logging.INFO, logger=LOGGER):
        for _ in range(50):
            outage.failed(_lost_connection())
        outage.succeeded()
        outage.succeeded()
    records = [(r.levelname, r.exc_info is None) for r in caplog.records]
    assert records == [("WARNING", True), ("INFO", True)]
    assert "database unavailable" in caplog.records[0].getMessage()


def test_a_second_outage_is_reported_again(caplog: pytest.LogCaptureFixture) -> None:
    outage = OutageLog("dispatch", logging.getLogger(LOGGER))
    with caplog.at_level(logging.INFO, logger=LOGGER):
        for _ in range(2):
            outage.failed(_lost_connection())
            outage.succeeded()
    assert [r.levelname for r in caplog.records] == ["WARNING", "INFO", "WARNING", "INFO"]


def test_other_errors_keep_their_traceback_every_time(caplog: pytest.LogCaptureFixture) -> None:
    outage = OutageLog("maintenance pass", logging.getLogger(LOGGER))
    with caplog.at_level(logging.INFO, logger=LOGGER):
        for _ in range(3):
            outage.failed(ValueError("a bug"))
    assert [r.levelname for r in caplog.records] == ["ERROR"] * 3
    assert all(r.exc_info is not None for r in caplog.records)
