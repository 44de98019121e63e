"""The request body cap: refused from Content-Length before reading, counted when streamed,
never read whole; the upload receiver keeps its own, larger cap. A stalled body is a 408."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator, Mapping
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import KEY_A, auth
from tests.api.test_http import BODY, CREATE
from tests.api.test_uploads import form, get_policy, stored, upload
from tests.support import raw_http
from tests.support.uvicorn_thread import UvicornThread
from vace_server.api.app import create_app
from vace_server.settings import Settings

LIMIT = 4096
MiB = 1024 * 1024
TOO_LARGE = f"Request body too large: the limit is {LIMIT} bytes, please check the request body."


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        api_keys=f"{KEY_A}=team-a",
        workers=0,
        public_base_url="http://testserver",
        max_request_bytes=LIMIT,
        request_body_timeout_seconds=0.5,
    )


def padded(size: int) -> bytes:
    """A valid create body of exactly `size` bytes (JSON allows trailing whitespace)."""
    body = json.dumps(BODY).encode()
    return body + b" " * (size - len(body))


def assert_too_large(status: int, headers: Mapping[str, str], body: bytes) -> None:
    assert status == 413
    assert headers["connection"] == "close"
    parsed = json.loads(body)
    assert set(parsed) == {"code", "message", "request_id"}
    assert (parsed["code"], parsed["message"]) == ("InvalidParameter", TOO_LARGE)


def test_a_body_at_the_cap_is_accepted_one_byte_more_is_refused(client: TestClient) -> None:
    r = client.post(CREATE, content=padded(LIMIT), headers=auth())
    assert r.status_code == 200, r.text
    assert r.json()["output"]["task_status"] == "PENDING"
    r = client.post(CREATE, content=padded(LIMIT + 1), headers=auth())
    assert_too_large(r.status_code, r.headers, r.content)


def test_the_cap_applies_to_every_route_and_before_auth(client: TestClient) -> None:
    r = client.post("/api/v1/tasks/x/cancel", content=b"x" * (LIMIT + 1))
    assert_too_large(r.status_code, r.headers, r.content)


def test_the_default_cap_is_one_mebibyte(tmp_path: Path) -> None:
    assert Settings(data_dir=tmp_path).http.max_request_bytes == MiB


class CountingBody:
    """A chunked request body of `total` bytes that counts how much the server pulled."""

    def __init__(self, total: int, chunk: int = 64 * 1024) -> None:
        self.total, self.chunk, self.consumed = total, chunk, 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while self.consumed < self.total:
            self.consumed += self.chunk
            yield b" " * self.chunk


def test_a_streamed_64_mb_body_is_read_only_up_to_the_cap(client: TestClient) -> None:
    app = client.app
    body = CountingBody(64 * MiB)

    async def post() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)  # pulls the body chunk by chunk, on demand
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            return await c.post(CREATE, content=body, headers=auth())

    r = asyncio.run(post())
    assert_too_large(r.status_code, r.headers, r.content)
    assert body.consumed <= LIMIT + body.chunk  # one chunk past the cap, then no more


@pytest.fixture
def server(settings: Settings) -> Iterator[UvicornThread]:
    with UvicornThread(create_app(settings)) as running:
        yield running


def test_a_declared_64_mb_body_is_refused_over_a_real_socket_before_it_is_sent(
    server: UvicornThread,
) -> None:
    head = raw_http.request_head(key=KEY_A, headers={"Content-Length": str(64 * MiB)})
    with raw_http.connect(server.port) as sock:
        sock.sendall(head)  # not a byte of the body
        answer = raw_http.parse_response(raw_http.read_all(sock))
    assert_too_large(answer.status, answer.headers, answer.body)


def test_a_chunked_64_mb_body_over_a_real_socket_stops_near_the_cap(
    server: UvicornThread,
) -> None:
    head = raw_http.request_head(key=KEY_A, headers={"Transfer-Encoding": "chunked"})
    piece = 64 * 1024
    frame = f"{piece:x}\r\n".encode() + b" " * piece + b"\r\n"
    with raw_http.connect(server.port, send_buffer=piece) as sock:
        sock.sendall(head)
        sent, data = raw_http.send_until_answered(sock, (frame for _ in range(1024)))
    answer = raw_http.parse_response(data)
    assert_too_large(answer.status, answer.headers, answer.body)
    # What went out is the cap plus what the two kernels' socket buffers held: far from 64 MB.
    assert sent < 16 * MiB
    r = httpx.post(server.base_url + CREATE, content=padded(LIMIT), headers=auth())
    assert r.status_code == 200, r.text


def test_the_upload_receiver_keeps_its_own_larger_cap(
    client: TestClient, settings: Settings
) -> None:
    policy = get_policy(client)
    fields = form(policy)
    data = b"x" * (LIMIT * 4)
    r = upload(client, fields, data)
    assert r.status_code == 200, r.text
    assert stored(settings, fields["key"]).read_bytes() == data


def test_a_stalled_body_is_answered_408_and_the_connection_closed(server: UvicornThread) -> None:
    head = raw_http.request_head(key=KEY_A, headers={"Content-Length": "100"})
    with raw_http.connect(server.port) as sock:
        sock.sendall(head + b'{"model": ')  # then nothing, without hanging up
        answer = raw_http.parse_response(raw_http.read_all(sock))
    assert answer.status == 408
    assert answer.headers["connection"] == "close"
    body = answer.json()
    assert set(body) == {"code", "message", "request_id"}
    assert body["code"] == "RequestTimeOut"
    assert body["message"] == (
        "Request timed out: no part of the request body arrived for 0.5 seconds."
    )


def test_the_default_body_timeout_is_a_minute(tmp_path: Path) -> None:
    assert Settings(data_dir=tmp_path).http.request_body_timeout_seconds == 60
