"""Runs a real `vace-server serve` process on a free loopback port for end-to-end tests."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import httpx

from vace_server.demo.serve_process import ServeProcess, free_port

API_KEY = "sk-e2e-test-key"

__all__ = ["API_KEY", "LiveServer", "free_port"]


class LiveServer(ServeProcess):
    """The server with the tests' settings (the tiny model, a known key, private networks
    allowed for the tests' loopback media, quick polling), plus the HTTP calls tests make.
    `start()` blocks until every worker has loaded its model; `stop()` sends SIGTERM."""

    def __init__(self, data_dir: Path, log_path: Path, **env: str) -> None:
        self.data_dir = data_dir
        settings = {
            **os.environ,
            "VACE_DATA_DIR": str(data_dir),
            "VACE_API_KEYS": f"{API_KEY}=e2e",
            "VACE_MODEL": "tiny",
            "VACE_NUM_FRAMES": "17",
            "VACE_MEDIA_ALLOW_PRIVATE_NETWORKS": "1",
            "VACE_POLL_SECONDS": "0.1",
            "VACE_MAINTENANCE_SECONDS": "0.5",
            **env,
        }
        super().__init__(settings, log_path)

    @property
    def api(self) -> str:
        return f"{self.base_url}/api/v1"

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
