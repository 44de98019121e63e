"""Dispatch latency and serving overhead, on the embedded SQLite default with one idle worker
and the tiny model.

Dispatch: submit -> RUNNING (the task's own `started_ms - created_ms`, server clock) with local
wake-ups (the default) and, side by side, with `VACE_LOCAL_WAKEUPS=false` (the worker polls
every 0.25 s, the default interval: how it was before). Submits alternate between the two
servers, each after the previous task ended and a random pause (a submit lands anywhere in a
polling period). Those tasks point at a missing image and end at once: only the claim counts.

Overhead: real tiny-model tasks (an image_reference of a served PNG); submit -> SUCCEEDED
against the pipeline call alone (`usage.stage_ms`: prompt_encode + vae_encode + denoise +
vae_decode, measured inside the worker); the difference is what serving adds."""

from __future__ import annotations

import random
import statistics
import time
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, text

from bench.rows import Row
from tests.support.images import png_bytes, subject_on_white
from tests.support.live_server import LiveServer
from tests.support.media_server import MediaServer, Served
from vace_server.tasks import db
from vace_server.worker.timings import PIPELINE_CALL_STAGES

TERMINAL = ("SUCCEEDED", "FAILED", "CANCELED")
OVERHEAD_TARGET_MS = 300.0


def _body(url: str) -> dict[str, Any]:
    return {
        "model": "wanx2.1-vace-plus",
        "input": {"function": "image_reference", "prompt": "a ball", "ref_images_url": [url]},
        "parameters": {"size": "960*960"},
    }


def _ended(server: LiveServer, engine: Engine, task_id: str) -> Any:
    query = text("SELECT status, created_ms, started_ms, ended_ms FROM tasks WHERE id = :id")
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        with engine.connect() as conn:
            row = conn.execute(query, {"id": task_id}).one()
        if row.status in TERMINAL:
            return row
        time.sleep(0.01)
    raise RuntimeError(f"task {task_id} did not end; log:\n{server.log_text()}")


def _server(tmp: Path, name: str, **env: str) -> tuple[LiveServer, Engine]:
    server = LiveServer(
        tmp / name, tmp / f"{name}.log", VACE_WORKERS="1", VACE_POLL_SECONDS="0.25",
        VACE_MAINTENANCE_SECONDS="5", **env,
    ).start()  # fmt: skip
    return server, db.make_engine(f"sqlite:///{tmp / name / 'vace.db'}")


def measure(tmp: Path, *, dispatch_tasks: int, overhead_tasks: int) -> list[Row]:
    woken, woken_db = _server(tmp, "woken")
    polled, polled_db = _server(tmp, "polled", VACE_LOCAL_WAKEUPS="false")
    try:
        with MediaServer() as media:
            missing = _body(media.url("/missing.png"))  # 404: the task fails at once
            latency: dict[str, list[float]] = {"woken": [], "polled": []}
            for _ in range(dispatch_tasks):
                for name, server, engine in (
                    ("woken", woken, woken_db),
                    ("polled", polled, polled_db),
                ):
                    time.sleep(random.uniform(0.3, 0.8))  # idle worker, random phase
                    row = _ended(server, engine, server.submit(missing))
                    latency[name].append(float(row.started_ms - row.created_ms))
            real = _body(media.add("/ball.png", Served(png_bytes(subject_on_white()), "image/png")))
            totals, calls, stages = _overhead(woken, woken_db, real, overhead_tasks)
    finally:
        for server in (woken, polled):
            server.stop()
        for engine in (woken_db, polled_db):
            engine.dispose()
    total, call = statistics.median(totals), statistics.median(calls)
    split = ", ".join(f"{k} {statistics.median(v):.0f}" for k, v in stages.items())
    return [
        Row("submit -> RUNNING, idle worker, SQLite (ms)", statistics.median(latency["woken"]),
            statistics.median(latency["polled"]), "the same with polling every 0.25 s "
            "(`VACE_LOCAL_WAKEUPS=false`, how it was)", "< 50 ms", higher_is_better=False),
        Row("submit -> SUCCEEDED, tiny model (ms)", total, call,
            "the pipeline call alone (measured in the worker)", "", higher_is_better=False),
        Row("serving overhead per task, tiny model (ms)", total - call, OVERHEAD_TARGET_MS,
            "the target", "< 300 ms", higher_is_better=False,
            note="submit -> SUCCEEDED minus the pipeline call. Median ms per stage: "
            f"{split}; the rest is dispatch, progress and final database writes"),
    ]  # fmt: skip


def _overhead(
    server: LiveServer, engine: Engine, body: dict[str, Any], count: int
) -> tuple[list[float], list[float], dict[str, list[float]]]:
    """Per task: submit -> SUCCEEDED (ms), the pipeline call (ms), and each stage (ms)."""
    server.submit(body)  # warm-up: first-run allocations and caches
    _ended(server, engine, server.submit(body))
    totals: list[float] = []
    calls: list[float] = []
    stages: dict[str, list[float]] = {}
    for _ in range(count):
        time.sleep(random.uniform(0.3, 0.8))
        task_id = server.submit(body)
        row = _ended(server, engine, task_id)
        if row.status != "SUCCEEDED":
            raise RuntimeError(f"tiny task {task_id} {row.status}; log:\n{server.log_text()}")
        stage_ms = server.query(task_id)["usage"]["stage_ms"]
        totals.append(float(row.ended_ms - row.created_ms))
        calls.append(sum(float(stage_ms.get(s, 0.0)) for s in PIPELINE_CALL_STAGES))
        for stage, ms in stage_ms.items():
            stages.setdefault(stage, []).append(float(ms))
    return totals, calls, stages
