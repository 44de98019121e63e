"""Workers as Ray actors on a real local Ray cluster (CPU only, tiny model), next to an
API-only replica (`VACE_WORKERS=0`) sharing its SQLite database and data folder.

The actors are placed with the real command, `vace-server ray-workers`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.images import png_bytes, subject_on_white
from tests.support.live_server import LiveServer
from tests.support.media_server import MediaServer, Served
from tests.support.ray_cluster import RAY_ENV, ray_address  # noqa: F401 (fixture)
from tests.support.task_db import TaskDb

LEASE_SECONDS = 6


def _body(url: str) -> dict[str, Any]:
    return {
        "model": "wanx2.1-vace-plus",
        "input": {"function": "image_reference", "prompt": "a ball", "ref_images_url": [url]},
        "parameters": {"size": "960*960"},
    }


class Cluster:
    """The API replica, the media server and the `ray-workers` command, for one module."""

    def __init__(self, address: str, server: LiveServer, media: MediaServer) -> None:
        self.address = address
        self.server = server
        self.media = media
        self.namespace = f"vace-test-{uuid.uuid4().hex[:8]}"
        self.db = TaskDb(f"sqlite:///{(server.data_dir / 'vace.db').resolve()}")

    def ray_workers(self, *args: str) -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, "-m", "vace_server", "ray-workers", "--address", self.address]
        cmd += ["--namespace", self.namespace, "--gpus-per-worker", "0", "--cpus-per-worker", "1"]
        result = subprocess.run(
            [*cmd, *args],
            env={**self.server.env, **RAY_ENV},
            capture_output=True,
            text=True,
            timeout=240,
        )
        assert result.returncode == 0, f"{args}: {result.stdout}\n{result.stderr[-4000:]}"
        return result

    def start_actors(self, replicas: int) -> dict[str, str]:
        """Places the actors; returns actor name → worker id, as the command printed them."""
        out = self.ray_workers("--replicas", str(replicas)).stdout
        lines = [line.split("\t") for line in out.splitlines() if line.strip()]
        assert len(lines) == replicas, out
        assert all(line[4] == "tiny@cpu" for line in lines), out
        return {line[0]: line[1] for line in lines}

    def ready(self) -> httpx.Response:
        return httpx.get(f"{self.server.base_url}/ready", timeout=5)


@pytest.fixture(scope="module")
def cluster(
    ray_address: str,  # noqa: F811
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Cluster]:
    tmp = tmp_path_factory.mktemp("ray")
    with MediaServer() as media:
        media.add("/subject.png", Served(png_bytes(subject_on_white()), "image/png"))
        media.add("/slow.png", Served(png_bytes(subject_on_white()), "image/png", delay=3.0))
        server = LiveServer(
            tmp / "data",
            tmp / "server.log",
            VACE_WORKERS="0",
            VACE_LEASE_SECONDS=str(LEASE_SECONDS),
            VACE_HEARTBEAT_SECONDS="0.5",
            VACE_MAINTENANCE_SECONDS="0.5",
        ).start()
        c = Cluster(ray_address, server, media)
        try:
            yield c
        finally:
            subprocess.run(
                [sys.executable, "-m", "vace_server", "ray-workers", "--address", ray_address,
                 "--namespace", c.namespace, "--stop", "--stop-timeout", "5"],
                env={**server.env, **RAY_ENV}, capture_output=True, timeout=120,
            )  # fmt: skip
            c.db.close()
            server.stop()


def test_two_actors_drain_twenty_tasks_each_exactly_once(cluster: Cluster) -> None:
    assert cluster.ready().status_code == 503  # API-only replica, no worker yet
    actors = cluster.start_actors(2)
    assert sorted(actors) == ["vace-worker-0", "vace-worker-1"]
    assert set(actors.values()) <= set(cluster.db.workers())  # both beat into the registry
    assert cluster.ready().json() == {"status": "ready", "workers": 2}

    server = cluster.server
    ids = [server.submit(_body(cluster.media.url("/subject.png"))) for _ in range(20)]
    holders: set[str] = set()
    deadline = time.monotonic() + 150
    while time.monotonic() < deadline:
        rows = cluster.db.tasks(ids)
        holders |= {r["worker_id"] for r in rows.values() if r["worker_id"]}
        if all(r["status"] == "SUCCEEDED" for r in rows.values()):
            break
        time.sleep(0.05)
    rows = cluster.db.tasks(ids)
    assert [rows[i]["status"] for i in ids] == ["SUCCEEDED"] * 20, server.log_text()
    assert [rows[i]["attempts"] for i in ids] == [1] * 20  # nothing ran twice
    assert holders == set(actors.values())  # both actors took tasks, nobody else did
    for task_id in ids:
        done = server.query(task_id)["output"]
        video = httpx.get(done["video_url"], timeout=30)
        assert video.status_code == 200
        assert video.content[4:8] == b"ftyp"  # an MP4 is really in the storage


def test_sigkilled_actor_task_is_finished_by_another_after_lease_expiry(
    cluster: Cluster,
) -> None:
    actors = cluster.start_actors(2)  # the same two actors, still there
    server = cluster.server
    task_id = server.submit(_body(cluster.media.url("/slow.png")))
    server.wait_status(task_id, "RUNNING")
    holder = cluster.db.task(task_id)["worker_id"]
    assert holder in actors.values()
    name = next(n for n, w in actors.items() if w == holder)
    pid = cluster.db.workers()[holder]["pid"]

    os.kill(pid, signal.SIGKILL)  # the actor process, mid-task
    done = server.wait(task_id, timeout=90)
    assert done["output"]["task_status"] == "SUCCEEDED", done
    row = cluster.db.task(task_id)
    assert row["attempts"] == 2  # the first attempt died with the actor, the second finished
    assert cluster.media.hits["/slow.png"] >= 2

    # Ray restarted the killed actor: same name, new process, new worker id.
    def restarted() -> dict[str, str] | None:
        now = cluster.start_actors(2)
        return now if now[name] != holder else None

    now = cluster.db.wait_for("the restarted actor", restarted, timeout=60, every=1.0)
    assert now[name] not in actors.values()
    assert cluster.db.workers()[now[name]]["pid"] != pid


def test_with_every_worker_gone_tasks_wait_pending_until_one_returns(cluster: Cluster) -> None:
    stopped = cluster.ray_workers("--stop", "--stop-timeout", "30").stdout
    assert "vace-worker-0" in stopped and "vace-worker-1" in stopped
    assert cluster.ready().status_code == 503
    server = cluster.server
    ids = [server.submit(_body(cluster.media.url("/subject.png"))) for _ in range(3)]
    time.sleep(2.0)
    assert [cluster.db.task(i)["status"] for i in ids] == ["PENDING"] * 3
    assert [server.query(i)["output"]["task_status"] for i in ids] == ["PENDING"] * 3

    cluster.start_actors(1)
    assert [server.wait(i)["output"]["task_status"] for i in ids] == ["SUCCEEDED"] * 3
    assert [cluster.db.task(i)["attempts"] for i in ids] == [1] * 3


def test_actor_refuses_a_database_without_schema(cluster: Cluster, tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "vace_server", "ray-workers", "--address", cluster.address]
    cmd += ["--namespace", f"{cluster.namespace}-empty", "--gpus-per-worker", "0"]
    env = {**cluster.server.env, **RAY_ENV, "VACE_DATA_DIR": str(tmp_path / "empty")}
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "vace-server db upgrade" in result.stderr


@pytest.mark.slow
def test_a_worker_group_runs_in_a_placement_group_of_two_gpus(cluster: Cluster) -> None:
    """`--gpus-per-task 2`: one actor in a placement group of the cluster's 2 GPUs (a count
    only, no CUDA here) launches the group's two rank processes on the ids Ray gave it; they
    meet on gloo and run a task; `--stop` ends the group and frees its placement group."""
    cluster.ray_workers("--stop", "--stop-timeout", "10")  # the plain actors: the group's task
    group = ("--name-prefix", "vace-group")
    out = cluster.ray_workers(*group, "--gpus-per-task", "2", "--cpus-per-worker", "0.5").stdout
    name, worker_id = out.split("\t")[:2]
    assert name == "vace-group-0"
    db, server = cluster.db, cluster.server
    db.wait_for("the group's rank 0", lambda: worker_id in db.workers(), timeout=120)
    rank0 = db.workers()[worker_id]
    assert rank0["gpus_per_task"] == 2
    args = Path(f"/proc/{rank0['pid']}/cmdline").read_bytes().split(b"\0")
    assert args[args.index(b"--gpus") + 1] == b"0,1"  # the GPU ids Ray assigned the actor
    assert args[args.index(b"--group-rank") + 1] == b"0"

    # The plain actors are gone (a SIGKILLed one's stale row stays): the group alone claims.
    def only_the_group() -> bool:
        others = [w for i, w in db.workers().items() if i != worker_id]
        return not any(Path(f"/proc/{w['pid']}").exists() for w in others)

    db.wait_for("the plain actors to exit", only_the_group, timeout=30)
    task_id = server.submit(_body(cluster.media.url("/subject.png")))
    assert server.wait(task_id)["output"]["task_status"] == "SUCCEEDED", server.log_text()

    stopped = cluster.ray_workers(*group, "--stop", "--stop-timeout", "30").stdout
    assert "vace-group-0" in stopped
    db.wait_for("the group to leave", lambda: worker_id not in db.workers(), timeout=30)
    gone = Path(f"/proc/{rank0['pid']}")
    db.wait_for("rank 0 to exit", lambda: not gone.exists(), timeout=30)
