"""A model that cannot be loaded is reported in /health; tasks wait instead of being lost."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from tests.support.live_server import LiveServer


def test_unloadable_model_is_reported_and_tasks_wait(
    live_server: Callable[..., LiveServer],
) -> None:
    server = live_server(wait_ready=False, VACE_MODEL="nobody/no-such-model", HF_HUB_OFFLINE="1")
    deadline = time.monotonic() + 120
    worker: dict[str, Any] = {}
    while time.monotonic() < deadline:
        worker = server.health()["workers"][0]
        if worker["error"]:
            break
        time.sleep(0.3)
    assert not worker["ready"]
    assert "nobody/no-such-model" in worker["error"]
    assert "VACE_MODEL" in worker["error"]  # the message says how to fix it
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
    assert server.query(task_id)["output"]["task_status"] == "PENDING"
