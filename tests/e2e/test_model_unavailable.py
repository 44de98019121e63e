"""A model that cannot be loaded is reported in /health (degraded, with the error) and in the
query of a waiting task; tasks wait instead of being lost. Settings that can never work stop
`serve` before anything starts."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.support.live_server import LiveServer
from tests.support.task_db import TaskDb
from tests.support.waiting import wait_until


def test_unloadable_model_is_reported_and_tasks_wait(
    live_server: Callable[..., LiveServer],
) -> None:
    server = live_server(wait_ready=False, VACE_MODEL="nobody/no-such-model", HF_HUB_OFFLINE="1")

    def load_failed() -> dict[str, Any] | None:
        now = server.health()
        return now if now["workers"][0]["error"] else None

    health = wait_until(load_failed, 120, every=0.3, what="the model load to fail")
    worker: dict[str, Any] = health["workers"][0]
    assert not worker["ready"]
    assert "nobody/no-such-model" in worker["error"]
    assert "VACE_MODEL" in worker["error"]  # the message says how to fix it
    assert health["status"] == "degraded"
    assert health["error"] == f"no worker can run this model: {worker['error']}"
    restarts_at_submit = worker["restarts"]
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

    # Right after submit, PENDING proves nothing. Wait until the worker has been restarted and
    # failed to load the model again since the task was queued: the task still waits, was
    # never claimed, and the API still says why.
    def failed_again() -> dict[str, Any] | None:
        now: dict[str, Any] = server.health()["workers"][0]
        return now if now["restarts"] > restarts_at_submit and now["error"] else None

    worker = wait_until(failed_again, 120, every=0.3, what="another failed model load")
    assert not worker["ready"] and "nobody/no-such-model" in worker["error"]
    assert server.health()["status"] == "degraded"
    out = server.query(task_id)["output"]
    assert out["task_status"] == "PENDING"
    assert out["progress"]["stage"] == "queued" and out["progress"]["queue_position"] == 1
    assert out["progress"]["message"] == f"no worker can run this model: {worker['error']}"
    db = TaskDb(f"sqlite:///{(server.data_dir / 'vace.db').resolve()}")
    try:
        row = db.task(task_id)
    finally:
        db.close()
    assert (row["status"], row["attempts"], row["worker_id"]) == ("PENDING", 0, None)


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
