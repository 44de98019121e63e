"""A PostgreSQL outage longer than the store's retry window, in the middle of a task, does not
fail it: progress and heartbeat writes are best effort, and the final write waits for the
database to come back."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import text

from tests.support.live_server import LiveServer
from tests.support.media_server import MediaServer
from tests.support.postgres import PostgresCluster
from tests.support.task_db import TaskDb

OUTAGE_SECONDS = 6.0  # six times the retry window set below


def _body(url: str) -> dict[str, Any]:
    return {
        "model": "wanx2.1-vace-plus",
        "input": {"function": "image_reference", "prompt": "a ball", "ref_images_url": [url]},
        "parameters": {"size": "960*960"},
    }


def test_a_running_task_rides_out_a_database_outage(
    live_server: Callable[..., LiveServer], media: MediaServer, postgres: PostgresCluster
) -> None:
    url = postgres.migrated_database()
    server = live_server(
        VACE_DATABASE_URL=url,
        VACE_DATABASE_RETRY_SECONDS="1",  # each store call gives up after 1 s
        VACE_NUM_INFERENCE_STEPS="120",  # cheap steps: the outage lands mid-denoising
        VACE_NUM_FRAMES="17",
        VACE_GENERATION_AREA="4096",
        OMP_NUM_THREADS="1",
    )
    task_id = server.submit(_body(media.url("/subject.png")))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        out = server.query(task_id)["output"]
        if out["task_status"] != "PENDING":
            break
        time.sleep(0.05)
    assert out["task_status"] == "RUNNING"
    postgres.stop("fast")  # every connection is cut
    try:
        time.sleep(OUTAGE_SECONDS)
    finally:
        postgres.start()
    done = server.wait(task_id, timeout=240)
    assert done["output"]["task_status"] == "SUCCEEDED", done
    tasks = TaskDb(url)
    try:
        with tasks.engine.connect() as conn:
            attempts = conn.execute(
                text("SELECT attempts FROM tasks WHERE id = :id"), {"id": task_id}
            ).scalar_one()
    finally:
        tasks.close()
    assert attempts == 1  # finished by the worker that had it, not rerun
    log = server.log_path.read_text(errors="replace")
    assert "the task goes on, retrying" in log  # the outage did hit the running task
