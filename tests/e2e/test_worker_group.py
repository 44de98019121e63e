"""`vace-server worker --gpus-per-task 2` on the CPU: one group of two gloo rank processes
next to an API-only replica. A cancel stops the run on both ranks and the group goes on; a
SIGKILLed follower ends the attempt, the launcher restarts the group and the task is retried
to success."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.live_server import LiveServer
from tests.support.media_server import MediaServer
from tests.support.task_db import TaskDb

pytestmark = pytest.mark.slow


def _body(url: str) -> dict[str, Any]:
    return {
        "model": "wanx2.1-vace-plus",
        "input": {"function": "image_reference", "prompt": "a ball", "ref_images_url": [url]},
        "parameters": {"size": "960*960"},
    }


def _ranks(parent: int) -> dict[int, int]:
    """group rank -> pid, for the rank processes the launcher `parent` started."""
    found: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
            args = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if f"PPid:\t{parent}\n" in status and b"--group-rank" in args:
            found[int(args[args.index(b"--group-rank") + 1])] = int(entry.name)
    return found


def _running_at_step(server: LiveServer, task_id: str, step: int) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        out = server.query(task_id)["output"]
        if out["task_status"] == "RUNNING" and (out.get("progress") or {}).get("step", 0) >= step:
            return out
        assert out["task_status"] in ("PENDING", "RUNNING"), out
        time.sleep(0.05)
    raise AssertionError(f"task {task_id} never reached step {step}")


@pytest.fixture
def launcher(tmp_path: Path) -> Iterator[Callable[[dict[str, str]], subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []

    def start(env: dict[str, str]) -> subprocess.Popen[bytes]:
        log = (tmp_path / "group.log").open("wb")
        cmd = [sys.executable, "-m", "vace_server", "worker", "--gpus-per-task", "2"]
        procs.append(subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT))
        return procs[-1]

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


def test_group_cancel_and_killed_rank_retry(
    live_server: Callable[..., LiveServer],
    media: MediaServer,
    launcher: Callable[[dict[str, str]], subprocess.Popen[bytes]],
    tmp_path: Path,
) -> None:
    server = live_server(VACE_WORKERS="0", VACE_NUM_INFERENCE_STEPS="20")
    db = TaskDb(f"sqlite:///{(server.data_dir / 'vace.db').resolve()}")
    parent = launcher({**server.env, "VACE_DEVICE": "cpu", "VACE_HEARTBEAT_SECONDS": "0.5"})
    log = tmp_path / "group.log"
    first = db.wait_for("the group's rank 0 to register", db.workers, timeout=120)
    assert [w["gpus_per_task"] for w in first.values()] == [2], log.read_text()
    ranks = _ranks(parent.pid)
    assert sorted(ranks) == [0, 1]

    # A cancel mid-run: both ranks stop after the same step, the group stays and goes on.
    canceled = server.submit(_body(media.url("/subject.png")))
    _running_at_step(server, canceled, 2)
    r = httpx.post(f"{server.api}/tasks/{canceled}/cancel", headers=server.headers(), timeout=10)
    assert r.status_code == 200
    assert server.wait(canceled, timeout=60)["output"]["task_status"] == "CANCELED"

    # A follower SIGKILLed mid-run: the attempt ends, the group restarts, the task is retried.
    task_id = server.submit(_body(media.url("/subject.png")))
    _running_at_step(server, task_id, 1)
    assert _ranks(parent.pid) == ranks  # the cancel did not cost the group
    os.kill(ranks[1], signal.SIGKILL)
    done = server.wait(task_id, timeout=180)
    assert done["output"]["task_status"] == "SUCCEEDED", log.read_text()[-4000:]
    assert db.task(task_id)["attempts"] == 2
    restarted = _ranks(parent.pid)
    assert sorted(restarted) == [0, 1] and set(restarted.values()).isdisjoint(ranks.values())

    parent.send_signal(signal.SIGTERM)
    assert parent.wait(timeout=60) == 0, log.read_text()[-4000:]
    assert _ranks(parent.pid) == {}
    db.close()
