"""uvicorn as `serve` runs it: a request it cannot parse gets a DashScope-shaped JSON 400."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.api.conftest import KEY_A
from tests.support import raw_http
from tests.support.uvicorn_thread import UvicornThread
from vace_server.api.app import create_app
from vace_server.settings import Settings


@pytest.fixture
def server(settings: Settings) -> Iterator[UvicornThread]:
    with UvicornThread(create_app(settings)) as running:
        yield running


@pytest.mark.parametrize(
    "head_and_tail",
    [
        raw_http.request_head(key=KEY_A, headers={"Transfer-Encoding": "chunked"}) + b"zz\r\n",
        b"GET /health HTTP/1.1 trailing\r\nHost: x\r\n\r\n",
    ],
)
def test_an_unparseable_request_is_a_json_400(server: UvicornThread, head_and_tail: bytes) -> None:
    with raw_http.connect(server.port) as sock:
        sock.sendall(head_and_tail)
        answer = raw_http.parse_response(raw_http.read_all(sock))
    assert answer.status == 400
    assert answer.headers["content-type"] == "application/json"
    assert answer.headers["connection"] == "close"
    body = answer.json()
    assert set(body) == {"code", "message", "request_id"}
    assert (body["code"], body["message"]) == ("InvalidParameter", "Invalid HTTP request received.")
