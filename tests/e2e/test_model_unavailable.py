"""A model that cannot be loaded is reported in /health (degraded, with the error) and in the
query of a waiting task; tasks wait instead of being lost. Settings that can never work stop
`serve` before anything starts."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.support.live_server import LiveServer


def test_unloadable_model_is_reported_and_tasks_wait(
    live_server: Callable[..., LiveServer],
) -> None:
    server = live_server(wait_ready=False, VACE_MODEL="nobody/no-such-model", HF_HUB_OFFLINE="1")
    deadline = time.monotonic() + 120
    worker: dict[str, Any] = {}
    health: dict[str, Any] = {}
    while time.monotonic() < deadline:
        health = server.health()
        worker = health["workers"][0]
        if worker["error"]:
            break
        time.sleep(0.3)
    assert not worker["ready"]
    assert "nobody/no-such-model" in worker["error"]
    assert "VACE_MODEL" in worker["error"]  # the message says how to fix it
    assert health["status"] == "degraded"
    assert health["error"] == f"no worker can run this model: {worker['error']}"
    task_id = server.submit(
        {
            "model": "wanx2.1-vace-plus",
            "input": {
                "function": "image_reference",
                "prompt": "p",
                "ref_images_url": ["http://127.0.0.1:9/x.png"],
            },
        }
    )
    out = server.query(task_id)["output"]
    assert out["task_status"] == "PENDING"
    # from the worker registry in the database: any API replica can say it
    assert out["progress"]["message"].startswith("no worker can run this model: ")
    assert "nobody/no-such-model" in out["progress"]["message"]


def test_settings_that_can_never_work_stop_serve_with_one_line(tmp_path: Path) -> None:
    env = {**os.environ, "VACE_DATA_DIR": str(tmp_path), "VACE_NUM_FRAMES": "80"}
    done = subprocess.run(
        [sys.executable, "-m", "vace_server", "serve"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "vace-server: invalid settings: VACE_NUM_FRAMES='80': must be 4n+1 (e.g. 81 or 17), not 80"
    ]
    assert not (tmp_path / "vace.db").exists()  # nothing was started
