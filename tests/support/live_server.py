"""Runs a real `vace-server serve` process on a free loopback port for end-to-end tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

API_KEY = "sk-e2e-test-key"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LiveServer:
    """`start()` blocks until every worker has loaded its model; `stop()` sends SIGTERM."""

    def __init__(self, data_dir: Path, log_path: Path, **env: str) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.data_dir = data_dir
        self.log_path = log_path
        self.env = {
            **os.environ,
            "VACE_PORT": str(self.port),
            "VACE_DATA_DIR": str(data_dir),
            "VACE_API_KEYS": f"{API_KEY}=e2e",
            "VACE_MODEL": "tiny",
            "VACE_NUM_FRAMES": "17",
            "VACE_MEDIA_ALLOW_PRIVATE_NETWORKS": "1",
            "VACE_POLL_SECONDS": "0.1",
            "VACE_MAINTENANCE_SECONDS": "0.5",
            **env,
        }
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def api(self) -> str:
        return f"{self.base_url}/api/v1"

    def start(self, timeout: float = 180.0, *, wait_ready: bool = True) -> LiveServer:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "vace_server", "serve"],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited early; log:\n{self.log_text()}")
            try:
                health = httpx.get(f"{self.base_url}/health", timeout=2).json()
                workers = health["workers"]
                if not wait_ready or all(w["ready"] and w["alive"] for w in workers):
                    return self
            except (httpx.HTTPError, ValueError, KeyError):
                pass
            time.sleep(0.3)
        raise RuntimeError(f"server not ready in {timeout}s; log:\n{self.log_text()}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")[-6000:]

    def health(self) -> dict[str, Any]:
        body: dict[str, Any] = httpx.get(f"{self.base_url}/health", timeout=5).json()
        return body

    # -------------------------------------------------------------- plain HTTP helpers
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {API_KEY}", "X-DashScope-Async": "enable"}

    def submit(self, body: dict[str, Any]) -> str:
        r = httpx.post(
            f"{self.api}/services/aigc/video-generation/video-synthesis",
            json=body,
            headers=self.headers(),
            timeout=30,
        )
        assert r.status_code == 200, r.text
        task_id: str = r.json()["output"]["task_id"]
        return task_id

    def query(self, task_id: str) -> dict[str, Any]:
        r = httpx.get(f"{self.api}/tasks/{task_id}", headers=self.headers(), timeout=30)
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body

    def wait(self, task_id: str, timeout: float = 120.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            body = self.query(task_id)
            if body["output"]["task_status"] in ("SUCCEEDED", "FAILED", "CANCELED", "UNKNOWN"):
                return body
            time.sleep(0.2)
        raise AssertionError(f"task {task_id} not finished in {timeout}s; log:\n{self.log_text()}")

    def wait_status(self, task_id: str, status: str, timeout: float = 60.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            body = self.query(task_id)
            if body["output"]["task_status"] == status:
                return body
            time.sleep(0.05)
        raise AssertionError(f"task {task_id} never reached {status}; log:\n{self.log_text()}")
