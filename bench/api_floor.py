"""The API floor, side by side with minimal FastAPI baselines (bench/baseline_app.py) under the
same load generator (bench/loadgen.py) and concurrency: query and create requests/s, the list
call with 10 and with 10,000 tasks in the store, and the API's memory across them.

Our server runs as `vace-server serve` with no worker (`VACE_WORKERS=0`), on SQLite; tasks
are made SUCCEEDED directly in its database (a claim and a success through `TaskStore`), so the
query answers carry the largest body (video URL, usage); the 10,000 tasks are bulk-inserted
copies of a real one."""

from __future__ import annotations

import json
import random
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import insert, select

from bench.loadgen import LoadResult, RequestMaker, http_request, run_load
from bench.rows import Row
from tests.support.live_server import API_KEY, LiveServer, free_port
from vace_server.tasks import db
from vace_server.tasks.models import tasks
from vace_server.tasks.store import TaskStore

CREATE_PATH = "/api/v1/services/aigc/video-generation/video-synthesis"
BODY = {
    "model": "wanx2.1-vace-plus",
    "input": {
        "function": "image_reference",
        "prompt": "a red ball rolls across a wooden table, soft light",
        "ref_images_url": ["http://127.0.0.1:9/ball.png"],
    },
    "parameters": {"size": "960*960", "seed": 7},
}


@dataclass(frozen=True)
class FloorSizes:
    seconds: float  # per load run
    rounds: int  # alternated runs per pair; the median is reported
    concurrency: int
    many_tasks: int  # "10,000 tasks"


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


class Baseline:
    """bench/baseline_app.py in its own process."""

    def __init__(self, tmp: Path, answer: dict[str, Any]) -> None:
        self.port = free_port()
        (tmp / "answer.json").write_text(json.dumps(answer))
        self.log = (tmp / "baseline.log").open("ab")
        args = ["--port", str(self.port), "--body", str(tmp / "answer.json")]
        args += ["--db", str(tmp / "baseline.db")]
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.baseline_app", *args], stdout=self.log, stderr=self.log
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                httpx.get(f"http://127.0.0.1:{self.port}/api/v1/tasks/x", timeout=2)
                return
            except httpx.HTTPError:
                time.sleep(0.2)
        raise RuntimeError("the baseline app did not start")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=20)
        self.log.close()


def _auth(host: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {API_KEY}", "X-DashScope-Async": "enable"}


def _get(port: int, paths: Callable[[int], str]) -> RequestMaker:
    host = f"127.0.0.1:{port}"
    headers = _auth(host)
    return lambda n: http_request("GET", paths(n), host, headers, b"")


def _post(port: int) -> RequestMaker:
    host = f"127.0.0.1:{port}"
    headers = {**_auth(host), "Content-Type": "application/json"}
    raw = json.dumps(BODY).encode()
    request = http_request("POST", CREATE_PATH, host, headers, raw)
    return lambda _n: request


def _finish(store: TaskStore, count: int) -> None:
    """Makes `count` PENDING tasks SUCCEEDED, with an effective record like a real run's."""
    effective = {"model": "tiny", "stage_ms": {"fetch": 3.0, "denoise": 900.0, "store": 2.0}}
    for _ in range(count):
        claim = store.claim("bench")
        assert claim is not None
        store.succeed(
            claim, output_key="2026-01-01/x.mp4", output_seconds=5, actual_prompt=None,
            effective=effective,
        )  # fmt: skip


def _bulk_copies(store: TaskStore, template_id: str, count: int) -> list[str]:
    """Inserts `count` copies of a stored task (new ids, spread over the last hour)."""
    with store.engine.connect() as conn:
        row = dict(conn.execute(select(tasks).where(tasks.c.id == template_id)).one()._mapping)
    now = int(time.time() * 1000)
    ids, batch = [], []
    for i in range(count):
        task_id = str(uuid.uuid4())
        ids.append(task_id)
        batch.append({**row, "id": task_id, "created_ms": now - 3_600_000 + i})
        if len(batch) == 1000 or i == count - 1:
            with store.engine.begin() as conn:
                conn.execute(insert(tasks), batch)
            batch = []
    return ids


def _median(results: list[LoadResult]) -> float:
    return statistics.median(r.rps for r in results)


def _load(port: int, make: RequestMaker, sizes: FloorSizes) -> LoadResult:
    result = run_load("127.0.0.1", port, make, concurrency=sizes.concurrency, seconds=sizes.seconds)
    if result.errors:
        raise RuntimeError(f"{result.errors} of {result.requests} requests failed on :{port}")
    return result


def _pair(
    ours: Callable[[], LoadResult], base: Callable[[], LoadResult], rounds: int
) -> tuple[float, float]:
    """Alternated runs; medians of requests/s (ours, baseline)."""
    mine, theirs = [], []
    for _ in range(rounds):
        mine.append(ours())
        theirs.append(base())
    return _median(mine), _median(theirs)


def _start(tmp: Path, name: str) -> tuple[LiveServer, TaskStore]:
    # Production defaults where the test harness speeds things up (maintenance every 5 s).
    server = LiveServer(
        tmp / name, tmp / f"{name}.log", VACE_WORKERS="0", VACE_MAINTENANCE_SECONDS="5"
    ).start()
    return server, TaskStore(db.make_engine(f"sqlite:///{tmp / name / 'vace.db'}"))


def measure(tmp: Path, sizes: FloorSizes) -> list[Row]:
    """Two of our servers side by side (10 tasks stored; `many_tasks` more) and the baseline,
    every pair of runs alternated so that the machine's load falls on both alike."""
    small, small_store = _start(tmp, "small")
    large, large_store = _start(tmp, "large")
    baseline: Baseline | None = None
    try:
        firsts = []
        for server, store in ((small, small_store), (large, large_store)):
            firsts.append(server.submit(BODY))
            for _ in range(9):
                server.submit(BODY)
            _finish(store, 10)  # 10 tasks in the store, all SUCCEEDED
        answer = small.query(firsts[0])
        baseline = Baseline(tmp, answer)
        ids = _bulk_copies(large_store, firsts[1], sizes.many_tasks)
        return _rows(small, large, baseline, (firsts[0], ids), sizes, large_store)
    finally:
        if baseline is not None:
            baseline.stop()
        for server, store in ((small, small_store), (large, large_store)):
            store.close()
            server.stop()


def _rows(
    small: LiveServer, large: LiveServer, baseline: Baseline, tasks_: tuple[str, list[str]],
    sizes: FloorSizes, large_store: TaskStore,
) -> list[Row]:  # fmt: skip
    first, ids = tasks_
    picks = random.Random(7)
    query_small = _get(small.port, lambda _n: f"/api/v1/tasks/{first}")
    query_base = _get(baseline.port, lambda _n: f"/api/v1/tasks/{first}")
    query_large = _get(large.port, lambda _n: f"/api/v1/tasks/{picks.choice(ids)}")
    list_small = _get(small.port, lambda _n: "/api/v1/tasks?page_size=10")
    list_large = _get(large.port, lambda _n: "/api/v1/tasks?page_size=10")
    warm = FloorSizes(1.0, 1, sizes.concurrency, 0)
    for port, make in ((small.port, query_small), (large.port, query_large)):
        _load(port, make, warm)
    get_ours, get_base = _pair(
        lambda: _load(small.port, query_small, sizes),
        lambda: _load(baseline.port, query_base, sizes),
        sizes.rounds,
    )
    get_many, get_few = _pair(
        lambda: _load(large.port, query_large, sizes),
        lambda: _load(small.port, query_small, sizes),
        sizes.rounds,
    )
    list_many, list_few = _pair(
        lambda: _load(large.port, list_large, sizes),
        lambda: _load(small.port, list_small, sizes),
        sizes.rounds,
    )
    post_ours, post_base = _pair(
        lambda: _load(large.port, _post(large.port), sizes),  # its store grows on
        lambda: _load(baseline.port, _post(baseline.port), sizes),
        sizes.rounds,
    )
    pids = [s.proc.pid if s.proc else 0 for s in (small, large)]
    rss_small, rss_large = (rss_mb(pid) for pid in pids)
    total = sum(large_store.count_by_status().values())
    many = f"{sizes.many_tasks:,}"
    return [
        Row("query `GET /api/v1/tasks/{id}` (requests/s)", get_ours, get_base,
            "minimal FastAPI endpoint returning the same body", ">= 0.5x"),
        Row("create (requests/s)", post_ours, post_base,
            "minimal FastAPI endpoint: parse the same body, insert one row", ">= 0.5x"),
        Row(f"list, page of 10, {many} tasks stored (requests/s)", list_many, list_few,
            "the same list call, 10 tasks stored", ">= 0.8x (flat)"),
        Row(f"query of a random task of {many} (requests/s)", get_many, get_few,
            "query of one task, 10 stored", ">= 0.8x (flat)"),
        Row(f"API memory, RSS with {total:,} tasks stored (MB)", rss_large, rss_small,
            "RSS of the server with 10 tasks after the same queries and lists",
            "<= 1.2x (flat)", higher_is_better=False),
    ]  # fmt: skip
