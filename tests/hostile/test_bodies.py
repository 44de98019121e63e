"""Hostile request bodies against a live `serve`: too large (declared or streamed), cut short
and abandoned, stalled, the wrong kind, not UTF-8, empty, JSON that is not an object, nested
or huge within the cap, broken HTTP framing. Each answered is a DashScope-shaped error; each
abandoned is one INFO line; after each the server is healthy and its log is still JSON with
no error in it."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import raw_http
from tests.support.live_server import LiveServer

MiB = 1024 * 1024
# A live `serve` for the module, and many cases against it: minutes, not seconds.
pytestmark = pytest.mark.slow

CAP = MiB  # the default VACE_MAX_REQUEST_BYTES
STALL_SECONDS = 1
BODY_INVALID = "Required body invalid, please check the request body format."
TOO_LARGE = f"Request body too large: the limit is {CAP} bytes, please check the request body."
VALID = {
    "model": "wanx2.1-vace-plus",
    "input": {
        "function": "image_reference",
        "prompt": "a cat",
        "ref_images_url": ["http://127.0.0.1:9/cat.png"],
    },
}


def valid_with(**fields: Any) -> bytes:
    """The valid body with `input`/`model` fields replaced."""
    body: dict[str, Any] = json.loads(json.dumps(VALID))
    for name, value in fields.items():
        if name == "model":
            body["model"] = value
        else:
            body["input"][name] = value
    return json.dumps(body).encode()


@dataclass
class Case:
    body: bytes
    status: int
    code: str
    message: str | None = None
    content_type: str = "application/json"


# Well-formed HTTP, hostile content: each must be answered with the error given.
ANSWERED = {
    "empty": Case(b"", 400, "InvalidParameter", BODY_INVALID),
    "whitespace": Case(b" \r\n\t ", 400, "InvalidParameter", BODY_INVALID),
    "not json": Case(b"model=wanx2.1-vace-plus", 400, "InvalidParameter", BODY_INVALID),
    "truncated json": Case(valid_with()[:-3], 400, "InvalidParameter", BODY_INVALID),
    "invalid utf-8": Case(
        valid_with().replace(b"a cat", b"a \xff\xfe cat"), 400, "InvalidParameter", BODY_INVALID
    ),
    "overlong utf-8": Case(
        valid_with().replace(b"a cat", b"a \xc0\xaf cat"), 400, "InvalidParameter", BODY_INVALID
    ),
    "json array": Case(b"[]", 400, "InvalidParameter", BODY_INVALID),
    "json string": Case(b'"model"', 400, "InvalidParameter", BODY_INVALID),
    "json number": Case(b"42", 400, "InvalidParameter", BODY_INVALID),
    "json null": Case(b"null", 400, "InvalidParameter", BODY_INVALID),
    "json true": Case(b"true", 400, "InvalidParameter", BODY_INVALID),
    "NaN literal": Case(
        valid_with()[:-1] + b', "parameters": {"seed": NaN}}', 400, "InvalidParameter"
    ),
    "form encoded": Case(
        b"model=wanx2.1-vace-plus&input=x",
        400,
        "InvalidParameter",
        BODY_INVALID,
        "application/x-www-form-urlencoded",
    ),
    "multipart": Case(
        b'--b\r\nContent-Disposition: form-data; name="model"\r\n\r\n'
        b"wanx2.1-vace-plus\r\n--b--\r\n",
        400,
        "InvalidParameter",
        BODY_INVALID,
        "multipart/form-data; boundary=b",
    ),
    "binary": Case(bytes(range(256)) * 16, 400, "InvalidParameter", BODY_INVALID, "image/png"),
    "nested arrays 100k deep": Case(
        b"[" * 100_000 + b"]" * 100_000, 400, "InvalidParameter", BODY_INVALID
    ),
    "nested objects 50k deep in input": Case(
        valid_with()[:-2] + b', "x": ' + b'{"a":' * 50_000 + b"1" + b"}" * 50_000 + b"}}",
        400,
        "InvalidParameter",
        BODY_INVALID,
    ),
    "input a huge array": Case(
        json.dumps({"model": VALID["model"], "input": [0] * 300_000}).encode(),
        400,
        "BadRequest.IllegalInput",
    ),
    "huge model string": Case(valid_with(model="m" * (CAP - 300)), 400, "InvalidParameter"),
    "huge function string": Case(valid_with(function="f" * (CAP - 300)), 400, "InvalidParameter"),
    "30k references": Case(
        valid_with(ref_images_url=["http://127.0.0.1:9/a.png"] * 30_000), 400, "InvalidParameter"
    ),
    "60k unknown keys, no model": Case(
        ("{" + ",".join(f'"k{i}": {i}' for i in range(60_000)) + "}").encode(),
        400,
        "BadRequest.EmptyModel",
    ),
    "one byte over the cap": Case(
        valid_with() + b" " * (CAP + 1 - len(valid_with())), 413, "InvalidParameter", TOO_LARGE
    ),
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    root = tmp_path_factory.mktemp("hostile-bodies")
    running = LiveServer(
        root / "data",
        root / "server.log",
        VACE_WORKERS="0",
        VACE_REQUEST_BODY_TIMEOUT_SECONDS=str(STALL_SECONDS),
    ).start()
    yield running
    running.stop()


class LogWatch:
    """The lines the server logs from now on."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = path.stat().st_size

    def lines(self) -> list[dict[str, Any]]:
        with self.path.open("rb") as f:
            f.seek(self.offset)
            text = f.read().decode("utf-8", errors="replace")
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    def wait_for(self, fragment: str, timeout: float = 10.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            lines = self.lines()
            if any(fragment in x["message"] for x in lines):
                return lines
            time.sleep(0.05)
        raise AssertionError(f"no log line with {fragment!r}: {self.lines()}")


def assert_healthy(server: LiveServer, watch: LogWatch, *, allowed: str = "") -> None:
    assert httpx.get(server.base_url + "/health", timeout=10).status_code == 200
    r = httpx.post(
        server.api + "/services/aigc/video-generation/video-synthesis",
        json=VALID,
        headers=server.headers(),
        timeout=30,
    )
    assert r.status_code == 200 and r.json()["output"]["task_status"] == "PENDING", r.text
    problems = [
        x
        for x in watch.lines()
        if x["level"] not in ("DEBUG", "INFO") and not (allowed and x["message"] == allowed)
    ]
    assert problems == []  # every line parsed as JSON, none a warning or an error


def assert_dashscope_error(answer: raw_http.RawResponse | httpx.Response, case: Case) -> None:
    status = answer.status if isinstance(answer, raw_http.RawResponse) else answer.status_code
    body = answer.json()
    assert status == case.status, body
    assert answer.headers["content-type"] == "application/json"
    assert set(body) == {"code", "message", "request_id"} and body["request_id"]
    assert body["code"] == case.code
    if case.message is not None:
        assert body["message"] == case.message


@pytest.mark.parametrize("name", list(ANSWERED))
def test_hostile_body_is_a_dashscope_error(server: LiveServer, name: str) -> None:
    case = ANSWERED[name]
    watch = LogWatch(server.log_path)
    r = httpx.post(
        server.api + "/services/aigc/video-generation/video-synthesis",
        content=case.body,
        headers={**server.headers(), "Content-Type": case.content_type},
        timeout=60,
    )
    assert_dashscope_error(r, case)
    assert_healthy(server, watch)


def raw_exchange(server: LiveServer, head: bytes, chunks: Iterator[bytes]) -> tuple[int, Any]:
    with raw_http.connect(server.port, send_buffer=64 * 1024) as sock:
        sock.sendall(head)
        sent, data = raw_http.send_until_answered(sock, chunks)
    return sent, raw_http.parse_response(data)


def test_declared_64_mb_is_refused_before_the_body(server: LiveServer) -> None:
    watch = LogWatch(server.log_path)
    head = raw_http.request_head(headers={"Content-Length": str(64 * MiB)})
    _sent, answer = raw_exchange(server, head, iter([b" " * 1024]))
    assert_dashscope_error(answer, Case(b"", 413, "InvalidParameter", TOO_LARGE))
    assert answer.headers["connection"] == "close"
    assert_healthy(server, watch)


def test_chunked_64_mb_is_cut_off_near_the_cap(server: LiveServer) -> None:
    watch = LogWatch(server.log_path)
    head = raw_http.request_head(headers={"Transfer-Encoding": "chunked"})
    piece = 64 * 1024
    frame = f"{piece:x}\r\n".encode() + b" " * piece + b"\r\n"
    sent, answer = raw_exchange(server, head, (frame for _ in range(64 * MiB // piece)))
    assert_dashscope_error(answer, Case(b"", 413, "InvalidParameter", TOO_LARGE))
    assert sent < 16 * MiB  # the cap plus what the socket buffers held
    assert_healthy(server, watch)


def test_too_large_on_another_route_is_refused_too(server: LiveServer) -> None:
    watch = LogWatch(server.log_path)
    head = raw_http.request_head("/api/v1/tasks/x/cancel", headers={"Content-Length": str(2 * CAP)})
    _sent, answer = raw_exchange(server, head, iter([]))
    assert_dashscope_error(answer, Case(b"", 413, "InvalidParameter", TOO_LARGE))
    assert_healthy(server, watch)


# Bodies abandoned part-way (slowloris-like: a little at a time, then the client hangs up).
ABANDONED = {
    "half the declared length": (
        {"Content-Length": "2000"},
        [valid_with()[:40], valid_with()[40:80], b" " * 100],
    ),
    "headers only": ({"Content-Length": "500"}, []),
    "declared over the body by one byte": (
        {"Content-Length": str(len(valid_with()) + 1)},
        [valid_with()],
    ),
    "chunked, cut inside a chunk": (
        {"Transfer-Encoding": "chunked"},
        [b"400\r\n", b'{"model": ', b'"wanx2.1-vace-plus"'],
    ),
    "chunked, no last chunk": (
        {"Transfer-Encoding": "chunked"},
        [b'5\r\n{"a":\r\n', b"2\r\n1}\r\n"],
    ),
}


@pytest.mark.parametrize("name", list(ABANDONED))
def test_abandoned_body_is_one_info_line(server: LiveServer, name: str) -> None:
    headers, pieces = ABANDONED[name]
    watch = LogWatch(server.log_path)
    with raw_http.connect(server.port) as sock:
        sock.sendall(raw_http.request_head(headers=headers))
        for piece in pieces:
            sock.sendall(piece)
    lines = watch.wait_for("client disconnected before its request was complete")
    (line,) = [x for x in lines if "disconnected" in x["message"]]
    assert line["level"] == "INFO" and line["request_id"]
    assert_healthy(server, watch)


STALLED = {
    "declared body never sent": ({"Content-Length": "500"}, b""),
    "half a body, then silence": ({"Content-Length": "2000"}, valid_with()[:60]),
    "chunked, then silence": ({"Transfer-Encoding": "chunked"}, b'5\r\n{"a":\r\n'),
}


@pytest.mark.parametrize("name", list(STALLED))
def test_stalled_body_is_a_408_and_the_connection_freed(server: LiveServer, name: str) -> None:
    headers, sent = STALLED[name]
    watch = LogWatch(server.log_path)
    with raw_http.connect(server.port) as sock:
        sock.sendall(raw_http.request_head(headers=headers) + sent)  # and then nothing
        answer = raw_http.parse_response(raw_http.read_all(sock))
    message = f"Request timed out: no part of the request body arrived for {STALL_SECONDS} seconds."
    assert_dashscope_error(answer, Case(b"", 408, "RequestTimeOut", message))
    assert answer.headers["connection"] == "close"
    assert_healthy(server, watch)


# Broken HTTP framing: refused by the HTTP layer itself, still with a JSON body.
INVALID_HTTP = "Invalid HTTP request received."
BROKEN_FRAMING = {
    "chunk size not hex": ({"Transfer-Encoding": "chunked"}, b"zz\r\nabc\r\n"),
    "Content-Length not a number": ({"Content-Length": "12abc"}, b"{}"),
    "negative Content-Length": ({"Content-Length": "-1"}, b"{}"),
    "40-digit Content-Length": ({"Content-Length": "9" * 40}, b"{}"),
    "unknown transfer coding": ({"Transfer-Encoding": "gzip"}, b"{}"),
    "NUL in a header": ({"X-Note": "a\x00b"}, b""),
}


@pytest.mark.parametrize("name", list(BROKEN_FRAMING))
def test_broken_framing_is_a_json_400(server: LiveServer, name: str) -> None:
    headers, tail = BROKEN_FRAMING[name]
    watch = LogWatch(server.log_path)
    with raw_http.connect(server.port) as sock:
        sock.sendall(raw_http.request_head(headers=headers) + tail)
        answer = raw_http.parse_response(raw_http.read_all(sock))
    assert_dashscope_error(answer, Case(b"", 400, "InvalidParameter", INVALID_HTTP))
    assert answer.headers["connection"] == "close"
    assert_healthy(server, watch, allowed=INVALID_HTTP)
