"""A `vace-server serve` child process on a loopback port: started, waited for until every
worker has loaded its model, stopped the way an operator stops it (SIGTERM, the graceful
shutdown). The demo runs one; the end-to-end tests and benchmarks run theirs through it too."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Self

import httpx

STOP_GRACE_SECONDS = 30.0  # after SIGTERM, before the kill


def free_port() -> int:
    """A loopback TCP port nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class ServeProcess:
    """`python -m vace_server serve` with `env` (VACE_PORT set to `port`), stdout and stderr
    appended to `log_path`; `base_url` is where it listens."""

    def __init__(self, env: Mapping[str, str], log_path: Path, port: int | None = None) -> None:
        self.port = free_port() if port is None else port
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.env = {**env, "VACE_PORT": str(self.port)}
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 180.0, *, wait_ready: bool = True) -> Self:
        """Starts the server and waits until /health answers and, with `wait_ready`, every
        worker is alive and has loaded its model.

        Returns: self. Raises: RuntimeError (with the log's tail) when it exits or is not
        ready in time."""
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "vace_server", "serve"],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited early:\n{self.log_text()}")
            if self._answers(wait_ready):
                return self
            time.sleep(0.3)
        raise RuntimeError(f"the server was not ready in {timeout:g} s:\n{self.log_text()}")

    def _answers(self, wait_ready: bool) -> bool:
        try:
            workers = httpx.get(f"{self.base_url}/health", timeout=2).json()["workers"]
        except (httpx.HTTPError, ValueError, KeyError):
            return False
        return not wait_ready or all(w["ready"] and w["alive"] for w in workers)

    def stop(self) -> None:
        """SIGTERM (the server's graceful shutdown), then a kill after STOP_GRACE_SECONDS."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=STOP_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def log_text(self, chars: int = 6000) -> str:
        """The end of the server's log."""
        return self.log_path.read_text(errors="replace")[-chars:]
