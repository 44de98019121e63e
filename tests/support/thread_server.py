"""A real uvicorn server for one in-process app, on a free loopback port in a thread: real
HTTP (for schemathesis and a browser) without starting a `vace-server serve` process."""

from __future__ import annotations

import threading
import time

import uvicorn
from fastapi import FastAPI

from tests.support.live_server import free_port


class ThreadServer:
    """`with ThreadServer(app) as server:` serves `app` (its lifespan too) until the block ends."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self.port = free_port()
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ThreadServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert self.thread.is_alive(), "the server stopped while starting"
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
