"""Tasks survive a server restart and a worker crash; the API stays up throughout."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from tests.support.images import png_bytes, subject_on_white
from tests.support.live_server import LiveServer
from tests.support.media_server import MediaServer, Served


def _body(url: str) -> dict[str, Any]:
    return {
        "model": "wanx2.1-vace-plus",
        "input": {"function": "image_reference", "prompt": "a ball", "ref_images_url": [url]},
        "parameters": {"size": "960*960"},
    }


def _worker_pid(server: LiveServer) -> int:
    workers = server.health()["workers"]
    assert len(workers) == 1
    pid: int = workers[0]["pid"]
    return pid


def test_restart_mid_queue_completes_every_task(
    live_server: Callable[..., LiveServer], media: MediaServer, tmp_path: Path
) -> None:
    slow = media.add("/slow.png", Served(png_bytes(subject_on_white()), "image/png", delay=1.0))
    first = live_server()
    ids = [first.submit(_body(slow)) for _ in range(4)]
    first.wait_status(ids[0], "RUNNING")
    first.stop()  # mid-queue: one task running, three pending
    second = live_server(data_dir=first.data_dir)
    results = [second.wait(task_id)["output"]["task_status"] for task_id in ids]
    assert results == ["SUCCEEDED"] * 4


def test_worker_crash_is_retried_and_api_stays_up(
    live_server: Callable[..., LiveServer], media: MediaServer
) -> None:
    slow = media.add("/slow.png", Served(png_bytes(subject_on_white()), "image/png", delay=2.0))
    server = live_server()
    task_id = server.submit(_body(slow))
    server.wait_status(task_id, "RUNNING")
    pid = _worker_pid(server)
    os.kill(pid, signal.SIGKILL)
    # The API answers while the worker is dead and being restarted.
    for _ in range(10):
        assert httpx.get(f"{server.base_url}/health", timeout=5).status_code == 200
        server.query(task_id)
        time.sleep(0.1)
    done = server.wait(task_id)
    assert done["output"]["task_status"] == "SUCCEEDED", done
    assert _worker_pid(server) != pid
    assert media.hits["/slow.png"] >= 2  # fetched again by the second attempt


def test_worker_crash_with_attempts_exhausted_fails_internal_error(
    live_server: Callable[..., LiveServer], media: MediaServer
) -> None:
    slow = media.add("/slow.png", Served(png_bytes(subject_on_white()), "image/png", delay=2.0))
    server = live_server(VACE_MAX_ATTEMPTS="1")
    task_id = server.submit(_body(slow))
    server.wait_status(task_id, "RUNNING")
    os.kill(_worker_pid(server), signal.SIGKILL)
    done = server.wait(task_id)
    assert done["output"]["task_status"] == "FAILED"
    assert done["output"]["code"] == "InternalError"
    assert done["output"]["message"] == (
        "An internal error has occurred, please try again later or contact service support."
    )
    # and the restarted worker serves the next task
    ok = server.wait(server.submit(_body(media.url("/subject.png"))))
    assert ok["output"]["task_status"] == "SUCCEEDED"
