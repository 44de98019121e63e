"""Webhooks on terminal states: signed, retried with backoff, never blocking anything."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from tests.support.live_server import LiveServer
from tests.support.media_server import MediaServer

SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()
CREATE = "/services/aigc/video-generation/video-synthesis"


class Receiver:
    """Loopback webhook receiver: /ok answers 200, /flaky 500 once then 200, /slow hangs
    until `release` is set (by the test, or at teardown)."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.release = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with outer.lock:
                    outer.calls.append(
                        {"path": self.path, "headers": dict(self.headers), "body": body}
                    )
                    seen = sum(c["path"] == self.path for c in outer.calls)
                if self.path == "/slow":
                    outer.release.wait(60)
                status = 500 if self.path == "/flaky" and seen == 1 else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def wait_for(self, path: str, count: int, timeout: float = 30) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                got = [c for c in self.calls if c["path"] == path]
            if len(got) >= count:
                return got
            time.sleep(0.05)
        raise AssertionError(f"{path}: {len(got)} of {count} calls")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.release.set()
    r.httpd.shutdown()
    r.httpd.server_close()


def _submit(server: LiveServer, image_url: str, callback: str | None) -> httpx.Response:
    headers = server.headers()
    if callback:
        headers["X-Vace-Callback-Url"] = callback
    body = {
        "model": "wanx2.1-vace-plus",
        "input": {"function": "image_reference", "prompt": "p", "ref_images_url": [image_url]},
    }
    return httpx.post(server.api + CREATE, json=body, headers=headers, timeout=10)


def _verify(call: dict[str, Any]) -> dict[str, Any]:
    h = {k.lower(): v for k, v in call["headers"].items()}
    key = base64.b64decode(SECRET.removeprefix("whsec_"))
    signed = f"{h['webhook-id']}.{h['webhook-timestamp']}.".encode() + call["body"]
    digest = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    assert h["webhook-signature"] == f"v1,{digest}"
    assert abs(int(h["webhook-timestamp"]) - time.time()) < 120
    body: dict[str, Any] = json.loads(call["body"])
    return body


def test_signed_delivery_retry_and_slow_receiver(
    live_server: Callable[..., LiveServer], media: MediaServer, receiver: Receiver
) -> None:
    server = live_server(
        VACE_WEBHOOK_SECRET=SECRET,
        VACE_WEBHOOK_TIMEOUT="1",
        VACE_WEBHOOK_URL=receiver.url("/global"),
    )
    image = media.url("/subject.png")
    ok = _submit(server, image, receiver.url("/ok")).json()["output"]["task_id"]
    flaky = _submit(server, image, receiver.url("/flaky")).json()["output"]["task_id"]
    slow = _submit(server, image, receiver.url("/slow")).json()["output"]["task_id"]

    (call,) = receiver.wait_for("/ok", 1)
    body = _verify(call)
    assert body["output"]["task_id"] == ok
    assert body["output"]["task_status"] == "SUCCEEDED"
    assert body["output"]["video_url"] == server.query(ok)["output"]["video_url"]
    assert body["usage"]["video_count"] == 1

    # the server-wide hook gets every task, the per-request one only its own
    global_ids = {_verify(c)["output"]["task_id"] for c in receiver.wait_for("/global", 3)}
    assert global_ids == {ok, flaky, slow}

    # 500 first, retried after the backoff, same message id
    first, second = receiver.wait_for("/flaky", 2)
    assert _verify(second)["output"]["task_id"] == flaky
    assert first["headers"]["webhook-id"] == second["headers"]["webhook-id"]

    # a receiver that hangs blocks neither health nor new work: both are answered while the
    # hung receiver still holds its request (it answers only once released)
    receiver.wait_for("/slow", 1)
    assert httpx.get(f"{server.base_url}/health", timeout=30).status_code == 200
    later = _submit(server, image, None).json()["output"]["task_id"]
    assert server.wait(later)["output"]["task_status"] == "SUCCEEDED"
    assert server.query(slow)["output"]["task_status"] == "SUCCEEDED"
    assert not receiver.release.is_set()  # all of the above happened with /slow hanging
    receiver.release.set()


def test_callback_header_is_validated(live_server: Callable[..., LiveServer]) -> None:
    server = live_server()
    r = _submit(server, "http://example.com/a.png", "ftp://example.com/hook")
    assert r.status_code == 400
    assert r.json()["message"] == (
        "Required parameter(X-Vace-Callback-Url) missing or invalid, please check the request "
        "parameters."
    )
