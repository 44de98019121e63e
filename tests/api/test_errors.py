"""Every failure a route lets escape is one JSON answer and one JSON log line carrying the
request id: an unexpected exception is a 500 `InternalError`, a database that fails is a 503
`ServiceUnavailable` with `Retry-After`; neither closes the kept-alive connection, and nothing
reaches uvicorn's own error path. A client that hangs up mid-body is one INFO line."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event

from tests.api.conftest import KEY_A, auth
from tests.api.test_http import BODY, CREATE
from tests.support import raw_http
from tests.support.json_log import JsonLog, json_log
from tests.support.responses import HttpResponse
from tests.support.uvicorn_thread import UvicornThread
from vace_server.api.app import create_app
from vace_server.api.context import AppContext
from vace_server.settings import Settings
from vace_server.tasks.store import TaskStore

UNAVAILABLE = "The service is temporarily unavailable, please try again later."


@contextmanager
def database_down(engine: Engine) -> Iterator[None]:
    """Every statement on `engine` fails with a real sqlite3 error, as a lost disk does."""

    def refuse(*_args: Any) -> None:
        raise sqlite3.OperationalError("disk I/O error")

    event.listen(engine, "before_cursor_execute", refuse)
    try:
        yield
    finally:
        event.remove(engine, "before_cursor_execute", refuse)


def body_of(r: HttpResponse, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/json"
    body: dict[str, Any] = r.json()
    assert set(body) == {"code", "message", "request_id"}
    assert body["code"] == code
    return body


def connection_of(r: httpx.Response) -> Any:
    return r.extensions["network_stream"].get_extra_info("client_addr")


@pytest.fixture
def log() -> Iterator[JsonLog]:
    with json_log() as captured:
        yield captured


@pytest.fixture
def server(settings: Settings) -> Iterator[UvicornThread]:
    with UvicornThread(create_app(settings)) as running:
        yield running


def app_context(server: UvicornThread) -> AppContext:
    app: Any = server.server.config.app  # uvicorn types it as any ASGI app
    context: AppContext = app.state.ctx
    return context


def test_a_database_failure_is_a_503_with_retry_after_logged_once(
    client: TestClient, context: AppContext, log: JsonLog
) -> None:
    context.store.retry_seconds = 0
    with database_down(context.store.engine):
        answers = [
            client.get("/api/v1/tasks/some-id", headers=auth()),
            client.get("/api/v1/tasks", headers=auth()),
            client.post(CREATE, json=BODY, headers=auth()),
        ]
    for r in answers:
        body = body_of(r, 503, "ServiceUnavailable")
        assert body["message"] == UNAVAILABLE
        assert r.headers["retry-after"] == "5"
        (line,) = log.of(body["request_id"])
        assert line["level"] == "ERROR" and "exception" not in line
        assert "(answered 503): OperationalError: disk I/O error" in line["message"]
    assert len(log.at_least(logging.WARNING)) == len(answers)
    assert client.get("/api/v1/tasks/some-id", headers=auth()).status_code == 200


def test_an_unexpected_exception_is_a_json_500_logged_once_with_its_request_id(
    client: TestClient, monkeypatch: pytest.MonkeyPatch, log: JsonLog
) -> None:
    def broken(*_args: Any, **_kwargs: Any) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(TaskStore, "get", broken)
    body = body_of(client.get("/api/v1/tasks/x", headers=auth()), 500, "InternalError")
    (line,) = log.of(body["request_id"])
    assert line["level"] == "ERROR"
    assert line["message"] == "unhandled error on GET /api/v1/tasks/x"
    assert "RuntimeError: a bug" in line["exception"]  # the traceback stays inside the line
    assert len(log.at_least(logging.WARNING)) == 1


def test_error_answers_keep_the_connection_alive_over_real_http(
    server: UvicornThread, monkeypatch: pytest.MonkeyPatch, log: JsonLog
) -> None:
    context = app_context(server)
    context.store.retry_seconds = 0
    with httpx.Client(base_url=server.base_url, headers=auth()) as c:
        first = c.get("/api/v1/tasks/x")
        local_ports = [connection_of(first)]
        with database_down(context.store.engine):
            unavailable = c.get("/api/v1/tasks/x")
            local_ports.append(connection_of(unavailable))
        monkeypatch.setattr(TaskStore, "get", lambda *_a, **_k: 1 / 0)
        broken = c.get("/api/v1/tasks/x")
        local_ports.append(connection_of(broken))
        monkeypatch.undo()
        after = c.get("/api/v1/tasks/x")
        local_ports.append(connection_of(after))
    assert first.status_code == after.status_code == 200
    rids = [
        body_of(unavailable, 503, "ServiceUnavailable")["request_id"],
        body_of(broken, 500, "InternalError")["request_id"],
    ]
    for r in (unavailable, broken):
        assert r.headers.get("connection") != "close"
    assert len(set(local_ports)) == 1  # all four over the one kept-alive connection
    # one ERROR line each, from us; uvicorn never saw an exception
    assert [x.get("request_id") for x in log.at_least(logging.ERROR)] == rids
    assert not [
        x for x in log.lines() if x["logger"].startswith("uvicorn") and x["level"] != "INFO"
    ]


def test_a_client_that_hangs_up_mid_body_is_one_info_line(
    server: UvicornThread, log: JsonLog
) -> None:
    head = raw_http.request_head(key=KEY_A, headers={"Content-Length": "1000"})
    with raw_http.connect(server.port) as sock:
        sock.sendall(head + b'{"model": "wanx2.1-vace-plus", ')
    assert httpx.get(server.base_url + "/health").status_code == 200
    (line,) = [x for x in log.lines() if "disconnected" in x["message"]]
    assert line["level"] == "INFO" and line["request_id"]
    assert line["message"] == f"client disconnected before its request was complete: POST {CREATE}"
    assert log.at_least(logging.WARNING) == []
