"""Cancel of a RUNNING task stops it mid-denoising; the worker goes on with the next task."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import httpx

from tests.support.images import png_bytes, subject_on_white
from tests.support.live_server import LiveServer
from tests.support.media_server import MediaServer, Served
from tests.support.waiting import wait_until

UNSUPPORTED = "Failed to cancel the task, please confirm if the task is in PENDING status."


def _body(url: str) -> dict[str, Any]:
    return {
        "model": "wanx2.1-vace-plus",
        "input": {"function": "image_reference", "prompt": "a ball", "ref_images_url": [url]},
        "parameters": {"size": "960*960"},
    }


def _cancel(server: LiveServer, task_id: str) -> httpx.Response:
    return httpx.post(f"{server.api}/tasks/{task_id}/cancel", headers=server.headers(), timeout=10)


def test_cancel_running_task_mid_denoising(
    live_server: Callable[..., LiveServer], media: MediaServer
) -> None:
    server = live_server(
        # 81 frames at 256x256 (~0.3 s a step here) x 100 steps: half a minute of denoising
        # even on a quiet machine, so the cancel always lands mid-run
        VACE_NUM_INFERENCE_STEPS="100",
        VACE_NUM_FRAMES="81",
        VACE_GENERATION_AREA="65536",
    )
    task_id = server.submit(_body(media.url("/subject.png")))
    deadline = time.monotonic() + 60
    progress: dict[str, Any] = {}
    while time.monotonic() < deadline:
        out = server.query(task_id)["output"]
        progress = out.get("progress") or {}
        if out["task_status"] == "RUNNING" and progress.get("step", 0) >= 2:
            break
        time.sleep(0.05)
    assert progress["stage"] == "denoising" and progress["total_steps"] == 100
    assert "eta_seconds" in progress and 0 < progress["percent"] < 90
    assert _cancel(server, task_id).status_code == 200
    done = server.wait(task_id, timeout=30)
    assert done["output"]["task_status"] == "CANCELED"
    assert "video_url" not in done["output"] and "usage" not in done
    r = _cancel(server, task_id)  # terminal now
    assert r.status_code == 400 and r.json()["message"] == UNSUPPORTED


def test_queue_position_and_cancel_after_success(
    live_server: Callable[..., LiveServer], media: MediaServer
) -> None:
    server = live_server()
    # The one worker is kept busy on `first` (its reference image downloads only when the
    # test says so), so the tasks behind it are certainly still queued when queried.
    release = threading.Event()
    held = media.add("/held.png", Served(png_bytes(subject_on_white()), "image/png", hold=release))
    try:
        first = server.submit(_body(held))
        server.wait_status(first, "RUNNING")
        wait_until(lambda: media.hits.get("/held.png"), what="the held download to start")
        second = server.submit(_body(media.url("/subject.png")))
        third = server.submit(_body(media.url("/subject.png")))
        out = server.query(second)["output"]
        assert out["task_status"] == "PENDING"
        assert out["progress"]["stage"] == "queued"
        assert out["progress"]["queue_position"] == 1  # `first` is running, not queued
        assert server.query(third)["output"]["progress"]["queue_position"] == 2
        assert _cancel(server, third).status_code == 200  # a queued task cancels at once
        assert server.query(third)["output"]["task_status"] == "CANCELED"
    finally:
        release.set()
    assert server.wait(first)["output"]["task_status"] == "SUCCEEDED"
    assert server.wait(second)["output"]["task_status"] == "SUCCEEDED"
    assert server.query(third)["output"]["task_status"] == "CANCELED"  # never run
    r = _cancel(server, first)
    assert r.status_code == 400 and r.json()["code"] == "UnsupportedOperation"
