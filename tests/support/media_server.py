"""A loopback HTTP server that serves test media, optionally slowly (started by the tests)."""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType


@dataclass
class Served:
    body: bytes
    content_type: str = "application/octet-stream"
    delay: float = 0.0  # seconds before answering
    redirect: str | None = None  # answer 302 with this Location instead of the body
    # answer only once this is set (at most a minute): the test decides when a download ends
    hold: threading.Event | None = None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    connections = 0  # TCP connections accepted, whatever was (or was not) sent on them

    def verify_request(self, request: object, client_address: object) -> bool:
        self.connections += 1
        return True


class _Server6(_Server):
    address_family = socket.AF_INET6


class MediaServer:
    """`server.add("/a.png", Served(...))`, then fetch `server.url("/a.png")`. `host` is a
    loopback address (127.0.0.1 by default, another 127.x or ::1); `hits` counts requests per
    path (also the ones answered 404)."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.routes: dict[str, Served] = {}
        self.hits: dict[str, int] = {}
        routes, hits = self.routes, self.hits

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                hits[self.path] = hits.get(self.path, 0) + 1
                served = routes.get(self.path)
                if served is None:
                    self.send_error(404)
                    return
                if served.delay:
                    time.sleep(served.delay)
                if served.hold is not None:
                    served.hold.wait(60)
                if served.redirect is not None:
                    self.send_response(302)
                    self.send_header("Location", served.redirect)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", served.content_type)
                self.send_header("Content-Length", str(len(served.body)))
                self.end_headers()
                self.wfile.write(served.body)

            def log_message(self, *_args: object) -> None:
                pass

        server_class: type[_Server] = _Server6 if ":" in host else _Server
        self._httpd = server_class((host, 0), Handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def add(self, path: str, served: Served) -> str:
        self.routes[path] = served
        return self.url(path)

    def url(self, path: str) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{self.netloc(str(host), int(port))}{path}"

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def total_hits(self) -> int:
        return sum(self.hits.values())

    @property
    def connections(self) -> int:
        return self._httpd.connections

    @staticmethod
    def netloc(host: str, port: int) -> str:
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    def __enter__(self) -> MediaServer:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
