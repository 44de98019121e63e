"""`serve` killed with SIGKILL takes its worker children with it, and a restarted `serve`
counts only live workers; a graceful stop puts the task in hand back in the queue without
using up an attempt, and the retried task runs with the settings it was accepted under."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text

from tests.support.live_server import LiveServer
from tests.support.media_server import MediaServer
from tests.support.processes import process_gone
from tests.support.task_db import TaskDb

# 81 frames at 256x256 (~0.3 s a step on a quiet machine) x 40 steps: a dozen seconds of
# denoising, so the stop lands mid-run however fast the machine, with a checkpoint each step
# (17 frames at 64x64 finished before the first progress poll on a quiet machine)
LONG_TASK = {
    "VACE_NUM_INFERENCE_STEPS": "40",
    "VACE_NUM_FRAMES": "81",
    "VACE_GENERATION_AREA": "65536",
    "OMP_NUM_THREADS": "1",
}


def _body(url: str) -> dict[str, Any]:
    return {
        "model": "wanx2.1-vace-plus",
        "input": {"function": "image_reference", "prompt": "a ball", "ref_images_url": [url]},
        "parameters": {"size": "960*960"},
    }


def _wait(what: str, check: Callable[[], Any], timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := check():
            return value
        time.sleep(0.1)
    raise AssertionError(f"{what} not within {timeout}s")


def _denoising(server: LiveServer, task_id: str) -> bool:
    out = server.query(task_id)["output"]
    assert out["task_status"] in ("PENDING", "RUNNING"), "the task ended before the stop"
    return out["task_status"] == "RUNNING" and (out.get("progress") or {}).get("step", 0) >= 1


def test_sigkill_of_serve_takes_its_workers_and_a_restart_counts_only_live_ones(
    live_server: Callable[..., LiveServer], tmp_path: Path
) -> None:
    server = live_server()
    child = server.health()["workers"][0]["pid"]
    assert server.proc is not None
    server.proc.send_signal(signal.SIGKILL)
    server.proc.wait()
    _wait("the worker child's death", lambda: process_gone(child), timeout=30)
    again = live_server()  # same data folder, same database
    r = httpx.get(f"{again.base_url}/ready", timeout=10)
    assert r.status_code == 200 and r.json()["workers"] == 1
    registry = TaskDb(f"sqlite:///{tmp_path / 'data' / 'vace.db'}")
    try:
        pids = [w["pid"] for w in registry.workers().values() if w.get("state") != "failed"]
    finally:
        registry.close()
    assert pids == [again.health()["workers"][0]["pid"]]


def test_graceful_stop_requeues_without_an_attempt_and_keeps_the_accepted_settings(
    live_server: Callable[..., LiveServer], media: MediaServer, tmp_path: Path
) -> None:
    server = live_server(VACE_STOP_GRACE_SECONDS="0", **LONG_TASK)
    task_id = server.submit(_body(media.url("/subject.png")))
    _wait("denoising", lambda: _denoising(server, task_id), timeout=120)
    server.stop()  # SIGTERM; the grace period (0 s) is over at once
    # it stopped by itself (uvicorn ends by re-raising the signal it handled), not killed
    assert server.proc is not None and server.proc.returncode in (0, -signal.SIGTERM)
    tasks = TaskDb(f"sqlite:///{tmp_path / 'data' / 'vace.db'}")
    try:
        row = tasks.task(task_id)
        assert (row["status"], row["attempts"], row["worker_id"]) == ("PENDING", 0, None)
        assert "back in the queue, attempt 1 not counted" in server.log_text()
        # restarted with other settings: the task still runs as it was accepted
        again = live_server(VACE_NUM_INFERENCE_STEPS="2", VACE_NUM_FRAMES="5")
        done = again.wait(task_id, timeout=300)
        assert done["output"]["task_status"] == "SUCCEEDED"
        with tasks.engine.connect() as conn:
            effective, attempts = conn.execute(
                text("SELECT effective, attempts FROM tasks WHERE id = :id"), {"id": task_id}
            ).one()
        assert attempts == 1
        ran = json.loads(effective)
        assert (ran["steps"], ran["generation_frames"]) == (40, 81)
    finally:
        tasks.close()
