"""Hand-made HTTP/1.1 over a plain socket, for requests no well-behaved client sends: bodies
shorter than their Content-Length, bodies that never end, a client that hangs up mid-body."""

from __future__ import annotations

import json
import select
import socket
from dataclasses import dataclass
from typing import Any

from tests.support.live_server import API_KEY

CREATE_PATH = "/api/v1/services/aigc/video-generation/video-synthesis"


def request_head(
    path: str = CREATE_PATH,
    *,
    method: str = "POST",
    headers: dict[str, str] | None = None,
    key: str = API_KEY,
) -> bytes:
    """Request line and headers (auth and the async header included), up to the blank line."""
    fields = {
        "Host": "127.0.0.1",
        "Authorization": f"Bearer {key}",
        "X-DashScope-Async": "enable",
        "Content-Type": "application/json",
        **(headers or {}),
    }
    lines = [f"{method} {path} HTTP/1.1", *(f"{k}: {v}" for k, v in fields.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def parse_response(data: bytes) -> RawResponse:
    """The first response in `data` (Content-Length framed, as all of ours are)."""
    head, _, rest = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", len(rest)))
    return RawResponse(int(status_line.split()[1]), headers, rest[:length])


def connect(port: int, *, send_buffer: int | None = None) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if send_buffer is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, send_buffer)
    sock.settimeout(30)
    sock.connect(("127.0.0.1", port))
    return sock


def read_all(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes (or resets) the connection."""
    data = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, TimeoutError):
            return data
        if not chunk:
            return data
        data += chunk


def send_until_answered(
    sock: socket.socket, chunks: Any, *, chunk_timeout: float = 2.0
) -> tuple[int, bytes]:
    """Sends `chunks` one by one until the server answers (or stops reading, or hangs up).

    Returns (bytes sent, what the server sent back)."""
    sent = 0
    sock.settimeout(chunk_timeout)
    for chunk in chunks:
        if select.select([sock], [], [], 0)[0]:
            break  # an answer (or a hang-up) is waiting
        try:
            sock.sendall(chunk)
        except (TimeoutError, BrokenPipeError, ConnectionResetError):
            sent += len(chunk)  # an upper bound: some of it may have gone out
            break  # the server stopped reading, or closed
        sent += len(chunk)
    sock.settimeout(30)
    return sent, read_all(sock)
