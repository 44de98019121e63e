from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from vace_server.engine.prompt_rewrite import (
    ChatCompletionsRewriter,
    build_rewriter,
    extend_prompt,
)
from vace_server.settings import Settings


class FakeChat:
    """A loopback OpenAI-compatible endpoint whose behaviour each test sets."""

    def __init__(self) -> None:
        self.mode = "ok"
        self.requests: list[dict[str, Any]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                outer.requests.append(
                    {
                        "path": self.path,
                        "auth": self.headers.get("Authorization"),
                        "body": json.loads(self.rfile.read(length)),
                    }
                )
                if outer.mode == "slow":
                    time.sleep(2)
                if outer.mode == "error":
                    self.send_response(500)
                    self.end_headers()
                    return
                content = {"ok": '"A red ball rolls across a sunny wooden table."', "empty": "  "}
                body = (
                    b"not json"
                    if outer.mode == "garbage"
                    else json.dumps(
                        {"choices": [{"message": {"content": content.get(outer.mode, "x")}}]}
                    ).encode()
                )
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"


@pytest.fixture
def chat() -> Iterator[FakeChat]:
    server = FakeChat()
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()


def test_rewrites_through_chat_completions(chat: FakeChat) -> None:
    rewriter = ChatCompletionsRewriter(chat.url, "qwen", api_key="k", timeout=5)
    out = extend_prompt(rewriter, "a red ball", function="image_reference")
    assert out == "A red ball rolls across a sunny wooden table."
    request = chat.requests[0]
    assert request["path"] == "/v1/chat/completions"
    assert request["auth"] == "Bearer k"
    assert request["body"]["model"] == "qwen"
    assert request["body"]["messages"][-1] == {"role": "user", "content": "a red ball"}
    assert "reference images" in request["body"]["messages"][0]["content"]


@pytest.mark.parametrize("mode", ["error", "garbage", "empty", "slow"])
def test_failures_fall_back_to_the_prompt(chat: FakeChat, mode: str) -> None:
    chat.mode = mode
    rewriter = ChatCompletionsRewriter(chat.url, "m", timeout=0.5)
    assert extend_prompt(rewriter, "a red ball", function="video_edit") == "a red ball"


def test_unreachable_endpoint_falls_back() -> None:
    rewriter = ChatCompletionsRewriter("http://127.0.0.1:9/v1", "m", timeout=0.5)
    assert extend_prompt(rewriter, "p", function="video_edit") == "p"


def test_not_configured_means_prompt_as_given() -> None:
    assert build_rewriter(Settings()) is None
    assert extend_prompt(None, "p", function="image_reference") == "p"
    assert isinstance(
        build_rewriter(Settings(prompt_rewrite_url="http://h/v1")), ChatCompletionsRewriter
    )
