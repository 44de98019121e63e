"""`vace-server worker` as its own process next to an API-only replica (`VACE_WORKERS=0`)
sharing its database and data folder: draining, clean SIGTERM, SIGKILL recovery by lease
expiry, one process per GPU, and the missing-schema error."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.exc import OperationalError

from tests.support.images import png_bytes, subject_on_white
from tests.support.live_server import LiveServer
from tests.support.media_server import MediaServer, Served
from tests.support.task_db import TaskDb

FAST_LEASES = {
    "VACE_LEASE_SECONDS": "4",
    "VACE_HEARTBEAT_SECONDS": "0.5",
    "VACE_MAINTENANCE_SECONDS": "0.5",
}


def _body(url: str) -> dict[str, Any]:
    return {
        "model": "wanx2.1-vace-plus",
        "input": {"function": "image_reference", "prompt": "a ball", "ref_images_url": [url]},
        "parameters": {"size": "960*960"},
    }


class Workers:
    """Starts `vace-server worker` processes with a server's environment; kills leftovers."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, env: dict[str, str], *args: str) -> subprocess.Popen[bytes]:
        log = (self.log_dir / f"worker-{len(self.procs)}.log").open("wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", "vace_server", "worker", *args],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.procs.append(proc)
        return proc

    def log(self, index: int) -> str:
        return (self.log_dir / f"worker-{index}.log").read_text(errors="replace")[-4000:]

    def cleanup(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Workers]:
    w = Workers(tmp_path)
    yield w
    w.cleanup()


@pytest.fixture
def slow(media: MediaServer) -> str:
    return media.add("/slow.png", Served(png_bytes(subject_on_white()), "image/png", delay=3.0))


def _db(server: LiveServer) -> TaskDb:
    return TaskDb(f"sqlite:///{(server.data_dir / 'vace.db').resolve()}")


def _ready(server: LiveServer) -> int:
    r = httpx.get(f"{server.base_url}/ready", timeout=5)
    return int(r.json()["workers"]) if r.status_code == 200 else 0


def test_worker_drains_and_sigterm_finishes_the_task_in_hand(
    live_server: Callable[..., LiveServer], media: MediaServer, slow: str, workers: Workers
) -> None:
    server = live_server(VACE_WORKERS="0", **FAST_LEASES)
    db = _db(server)
    assert _ready(server) == 0
    # a grace period longer than the task: SIGTERM lets it finish (past the grace it would
    # go back to the queue, tests/e2e/test_shutdowns.py)
    proc = workers.start({**server.env, "VACE_STOP_GRACE_SECONDS": "300"})
    db.wait_for("the worker to register", lambda: _ready(server) == 1, timeout=120)

    ids = [server.submit(_body(media.url("/subject.png"))) for _ in range(4)]
    assert [server.wait(i)["output"]["task_status"] for i in ids] == ["SUCCEEDED"] * 4
    assert [db.task(i)["attempts"] for i in ids] == [1] * 4

    task_id = server.submit(_body(slow))
    server.wait_status(task_id, "RUNNING")
    proc.send_signal(signal.SIGTERM)  # mid-task: it must finish this one, then exit
    assert proc.wait(timeout=60) == 0, workers.log(0)
    row = db.task(task_id)
    assert (row["status"], row["attempts"]) == ("SUCCEEDED", 1), workers.log(0)
    assert db.workers() == {}  # left the registry on the way out
    assert _ready(server) == 0
    db.close()


def test_killed_worker_task_waits_pending_until_a_worker_returns(
    live_server: Callable[..., LiveServer], media: MediaServer, slow: str, workers: Workers
) -> None:
    server = live_server(VACE_WORKERS="0", **FAST_LEASES)
    db = _db(server)
    proc = workers.start(server.env)
    db.wait_for("the worker to register", lambda: _ready(server) == 1, timeout=120)
    task_id = server.submit(_body(slow))
    server.wait_status(task_id, "RUNNING")
    holder = db.task(task_id)["worker_id"]
    assert db.workers()[holder]["pid"] == proc.pid

    os.kill(proc.pid, signal.SIGKILL)  # every worker is gone, mid-task
    proc.wait(timeout=10)
    # The lease expires, the API replica's maintenance requeues the task; nobody takes it.
    server.wait_status(task_id, "PENDING", timeout=30)
    later = server.submit(_body(media.url("/subject.png")))
    assert server.query(later)["output"]["task_status"] == "PENDING"
    assert db.task(task_id)["attempts"] == 1

    workers.start(server.env)  # a worker returns
    assert server.wait(task_id)["output"]["task_status"] == "SUCCEEDED"
    assert server.wait(later)["output"]["task_status"] == "SUCCEEDED"
    assert db.task(task_id)["attempts"] == 2
    assert db.task(later)["attempts"] == 1
    db.close()


def test_one_process_per_gpu_with_migrate_then_clean_stop(
    live_server: Callable[..., LiveServer], media: MediaServer, workers: Workers, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    env = {
        **os.environ,
        "VACE_DATA_DIR": str(data),
        "VACE_MODEL": "tiny",
        "VACE_NUM_FRAMES": "17",
        "VACE_MEDIA_ALLOW_PRIVATE_NETWORKS": "1",
        "VACE_POLL_SECONDS": "0.1",
    }
    # Workers first, on an empty database: --migrate creates the schema.
    parent = workers.start(env, "--gpus", "0,1", "--migrate")
    db = TaskDb(f"sqlite:///{(data / 'vace.db').resolve()}")

    def both() -> dict[str, dict[str, Any]] | None:
        try:
            found = db.workers()
        except OperationalError:  # the schema is not there yet (no such table)
            return None
        return found if len(found) == 2 else None

    registered = db.wait_for("two workers", both, timeout=120)
    assert sorted(w["gpu"] for w in registered.values()) == ["0", "1"]
    assert len({w["pid"] for w in registered.values()}) == 2
    assert parent.pid not in {w["pid"] for w in registered.values()}

    server = live_server(data_dir=data, VACE_WORKERS="0")
    ids = [server.submit(_body(media.url("/subject.png"))) for _ in range(4)]
    assert [server.wait(i)["output"]["task_status"] for i in ids] == ["SUCCEEDED"] * 4

    parent.send_signal(signal.SIGTERM)
    assert parent.wait(timeout=60) == 0, workers.log(0)
    assert db.workers() == {}
    db.close()


def test_missing_schema_is_a_clear_startup_error(tmp_path: Path) -> None:
    env = {**os.environ, "VACE_DATA_DIR": str(tmp_path / "fresh"), "VACE_MODEL": "tiny"}
    result = subprocess.run(
        [sys.executable, "-m", "vace_server", "worker"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "has no vace-server schema" in result.stderr
    assert "vace-server db upgrade" in result.stderr
