"""Two API replicas (each with one worker) on one real PostgreSQL database, started by the
test run: every task runs exactly once, 200 concurrent creates all land and finish, and a
PostgreSQL restart mid-run loses nothing.

Claims are counted by the database itself: a trigger logs every UPDATE that raises a task's
`attempts` (which only a claim does), so a task handed to two workers would show two rows.
"""

from __future__ import annotations

import base64
import secrets
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, bindparam, text

from tests.support.images import png_bytes, subject_on_white
from tests.support.live_server import LiveServer
from tests.support.media_server import MediaServer, Served
from tests.support.postgres import PostgresCluster
from tests.support.waiting import wait_until
from vace_server.tasks import db

TERMINAL = ("SUCCEEDED", "FAILED", "CANCELED")

CLAIM_LOG = [
    "CREATE TABLE claim_log (task_id varchar(36) NOT NULL, worker_id varchar(96), attempts int)",
    """CREATE FUNCTION log_claim() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO claim_log VALUES (NEW.id, NEW.worker_id, NEW.attempts);
        RETURN NEW;
    END $$""",
    """CREATE TRIGGER tasks_claimed AFTER UPDATE ON tasks FOR EACH ROW
    WHEN (NEW.attempts > OLD.attempts) EXECUTE FUNCTION log_claim()""",
]


@dataclass
class Replicas:
    servers: list[LiveServer]
    engine: Engine
    media: MediaServer
    image_url: str

    def body(self, url: str | None = None) -> dict[str, Any]:
        return {
            "model": "wanx2.1-vace-plus",
            "input": {
                "function": "image_reference",
                "prompt": "a ball",
                "ref_images_url": [url or self.image_url],
            },
            "parameters": {"size": "960*960"},
        }

    def statuses(self, ids: list[str]) -> dict[str, str]:
        query = text("SELECT id, status FROM tasks WHERE id IN :ids").bindparams(
            bindparam("ids", expanding=True)
        )
        with self.engine.connect() as conn:
            return {r.id: r.status for r in conn.execute(query, {"ids": ids})}

    def wait_terminal(self, ids: list[str], timeout: float) -> dict[str, str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.statuses(ids)
            if len(found) == len(ids) and all(s in TERMINAL for s in found.values()):
                return found
            time.sleep(0.5)
        logs = "\n".join(s.log_text() for s in self.servers)
        raise AssertionError(f"not all terminal after {timeout}s: {self.statuses(ids)}\n{logs}")

    def claims(self, ids: list[str]) -> dict[str, list[str]]:
        """Task id -> the worker ids that claimed it, as the trigger logged them."""
        query = text("SELECT task_id, worker_id FROM claim_log WHERE task_id IN :ids")
        query = query.bindparams(bindparam("ids", expanding=True))
        out: dict[str, list[str]] = {task_id: [] for task_id in ids}
        with self.engine.connect() as conn:
            for row in conn.execute(query, {"ids": ids}):
                out[row.task_id].append(row.worker_id)
        return out


@pytest.fixture(scope="module")
def replicas(
    postgres: PostgresCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Replicas]:
    url = postgres.create_database()  # empty: both replicas migrate it as they start, at once
    root = tmp_path_factory.mktemp("pg-replicas")
    env = {
        "VACE_DATABASE_URL": url,
        "VACE_WORKERS": "1",
        "VACE_NUM_FRAMES": "5",
        "VACE_URL_SIGNING_SECRET": secrets.token_hex(32),
        "VACE_WEBHOOK_SECRET": "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode(),
        "OMP_NUM_THREADS": "1",  # two workers share two cores
    }
    # One data folder (the local output storage) shared by both, as a shared volume would be.
    servers = [LiveServer(root / "data", root / f"replica{i}.log", **env) for i in range(2)]
    engine = db.make_engine(url)
    with MediaServer() as media, ThreadPoolExecutor(2) as pool:
        image = media.add("/subject.png", Served(png_bytes(subject_on_white()), "image/png"))
        try:
            list(pool.map(lambda s: s.start(), servers))
            with engine.begin() as conn:
                for statement in CLAIM_LOG:
                    conn.exec_driver_sql(statement)
            yield Replicas(servers, engine, media, image)
        finally:
            for server in servers:
                server.stop()
            engine.dispose()
            postgres.drop_database(url)


def test_twenty_tasks_across_two_replicas_each_run_exactly_once(replicas: Replicas) -> None:
    servers = replicas.servers
    ids = [servers[i % 2].submit(replicas.body()) for i in range(20)]
    assert replicas.wait_terminal(ids, timeout=90) == dict.fromkeys(ids, "SUCCEEDED")
    claims = replicas.claims(ids)
    assert {task_id: len(workers) for task_id, workers in claims.items()} == dict.fromkeys(ids, 1)
    workers = {w for claimed in claims.values() for w in claimed}
    assert len(workers) == 2, "both replicas' workers should have taken tasks"
    # Either replica answers for tasks created through the other.
    for i, task_id in enumerate(ids[:4]):
        body = servers[(i + 1) % 2].query(task_id)
        assert body["output"]["task_status"] == "SUCCEEDED"
        assert httpx.get(body["output"]["video_url"], timeout=10).status_code == 200


@pytest.mark.slow  # 200 tasks through two replicas: about 90 s
def test_200_concurrent_creates_against_two_replicas(replicas: Replicas) -> None:
    servers = replicas.servers
    per_thread, threads = 25, 8
    body = replicas.body()

    def client(n: int) -> list[tuple[int, str | None]]:
        out: list[tuple[int, str | None]] = []
        with httpx.Client(timeout=60) as http:
            for i in range(per_thread):
                server = servers[(n + i) % 2]
                r = http.post(
                    f"{server.api}/services/aigc/video-generation/video-synthesis",
                    json=body,
                    headers=server.headers(),
                )
                task_id = r.json()["output"]["task_id"] if r.status_code == 200 else None
                out.append((r.status_code, task_id))
        return out

    with ThreadPoolExecutor(threads) as pool:
        results = [item for batch in pool.map(client, range(threads)) for item in batch]
    codes = [code for code, _ in results]
    assert [c for c in codes if c >= 500] == []
    assert codes == [200] * (per_thread * threads)
    ids = [task_id for _, task_id in results if task_id]
    assert len(set(ids)) == 200
    assert replicas.wait_terminal(ids, timeout=240) == dict.fromkeys(ids, "SUCCEEDED")
    claims = replicas.claims(ids)
    assert {task_id: len(workers) for task_id, workers in claims.items()} == dict.fromkeys(ids, 1)


def test_postgres_restart_mid_run_loses_nothing(
    replicas: Replicas, postgres: PostgresCluster
) -> None:
    servers = replicas.servers
    slow = replicas.media.add(
        "/slow.png", Served(png_bytes(subject_on_white()), "image/png", delay=1.5)
    )
    ids = [servers[i % 2].submit(replicas.body(slow)) for i in range(6)]
    deadline = time.monotonic() + 30
    while "RUNNING" not in replicas.statuses(ids).values():
        assert time.monotonic() < deadline, "no task started"
        time.sleep(0.05)
    before = replicas.statuses(ids)
    assert "PENDING" in before.values()  # tasks both running and waiting when the server goes

    codes: list[int] = []
    stop = threading.Event()

    def poll_api() -> None:  # the API keeps answering (slowly) through the restart
        while not stop.is_set():
            url = f"{servers[0].api}/tasks/{ids[0]}"
            codes.append(httpx.get(url, headers=servers[0].headers(), timeout=60).status_code)
            time.sleep(0.1)

    poller = threading.Thread(target=poll_api)
    poller.start()
    try:
        postgres.restart(down_seconds=2.0)
        answered_before = len(codes)
        # the poller gets answers after the restart too (not just a fixed second later)
        wait_until(lambda: len(codes) >= answered_before + 3, 60, what="answers after restart")
    finally:
        stop.set()
        poller.join(timeout=60)
    assert codes and set(codes) == {200}
    for server in servers:  # and answers at once afterwards
        assert httpx.get(f"{server.base_url}/health", timeout=10).status_code == 200
    assert replicas.wait_terminal(ids, timeout=120) == dict.fromkeys(ids, "SUCCEEDED")
    claims = replicas.claims(ids)
    # No task lost, and none needed a second run: workers rode out the restart.
    assert {task_id: len(workers) for task_id, workers in claims.items()} == dict.fromkeys(ids, 1)
    assert [s.health()["workers"][0]["restarts"] for s in servers] == [0, 0]
    # New work after the restart is picked up as before.
    after = servers[1].submit(replicas.body())
    assert servers[0].wait(after, timeout=60)["output"]["task_status"] == "SUCCEEDED"
