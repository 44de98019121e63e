"""A loopback OpenAI-compatible chat-completions endpoint for prompt-rewriting tests."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class FakeChat:
    """A loopback OpenAI-compatible endpoint whose behaviour each test sets."""

    def __init__(self) -> None:
        self.mode = "ok"
        self.requests: list[dict[str, Any]] = []
        self.release = threading.Event()  # "slow" answers only once this is set (or after 60 s)
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
                    outer.release.wait(60)
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
