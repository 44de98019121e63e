"""Claim latency: how long a task submitted to an idle worker stays PENDING, on SQLite (the
worker polls every `VACE_POLL_SECONDS`, default 0.25 s) and on PostgreSQL (LISTEN/NOTIFY
wakes it), measured side by side in one run.

    .venv/bin/python -m bench.claim_latency [--tasks 30] [--postgres-url postgresql+psycopg://...]

Starts one `vace-server serve` (one worker, tiny model, default polling) per database; without
--postgres-url, a throwaway PostgreSQL cluster from the Debian binaries (as the tests do).
Submits are alternated between the two servers, one at a time, each after the previous task
ended and a random pause (so a submit lands anywhere in a polling period). The latency is the
task's own `started_ms - created_ms` (server clock): submit → RUNNING. Tasks point at a missing
image, so they end at once: only the claim is measured."""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from pathlib import Path

from sqlalchemy import Engine, text

from tests.support.live_server import LiveServer
from tests.support.media_server import MediaServer
from tests.support.postgres import PostgresCluster
from vace_server.tasks import db

TERMINAL = ("SUCCEEDED", "FAILED", "CANCELED")


def _body(url: str) -> dict[str, object]:
    return {
        "model": "wanx2.1-vace-plus",
        "input": {"function": "image_reference", "prompt": "a ball", "ref_images_url": [url]},
        "parameters": {"size": "960*960"},
    }


def _latency_ms(server: LiveServer, engine: Engine, body: dict[str, object]) -> int:
    """Submits one task, waits for it to end, returns started_ms - created_ms."""
    task_id = server.submit(body)
    query = text("SELECT status, created_ms, started_ms FROM tasks WHERE id = :id")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with engine.connect() as conn:
            row = conn.execute(query, {"id": task_id}).one()
        if row.status in TERMINAL:
            return int(row.started_ms - row.created_ms)
        time.sleep(0.02)
    raise RuntimeError(f"task {task_id} did not end; log:\n{server.log_text()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=30, help="tasks per database")
    parser.add_argument("--postgres-url", default=None, help="an existing (empty) database")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="vace-bench-"))
    cluster = None if args.postgres_url else PostgresCluster.create()
    pg_url = args.postgres_url or (cluster.create_database() if cluster else "")
    urls = {"sqlite": f"sqlite:///{tmp / 'sqlite' / 'vace.db'}", "postgresql": pg_url}
    servers: dict[str, LiveServer] = {}
    engines: dict[str, Engine] = {}
    try:
        with MediaServer() as media:
            body = _body(media.url("/missing.png"))  # 404: the task fails at once
            for name, url in urls.items():
                servers[name] = LiveServer(
                    tmp / name,
                    tmp / f"{name}.log",
                    VACE_DATABASE_URL=url,
                    VACE_POLL_SECONDS="0.25",  # the default, not the tests' faster polling
                    VACE_WORKERS="1",
                ).start()
                engines[name] = db.make_engine(url)
            samples: dict[str, list[int]] = {name: [] for name in urls}
            for _ in range(args.tasks):
                for name, server in servers.items():
                    time.sleep(random.uniform(0.3, 0.8))  # idle worker, random phase
                    samples[name].append(_latency_ms(server, engines[name], body))
    finally:
        for server in servers.values():
            server.stop()
        for engine in engines.values():
            engine.dispose()
        if cluster:
            cluster.destroy()

    print(f"claim latency, submit -> RUNNING with an idle worker ({args.tasks} tasks each)")
    print(f"{'database':<12}{'median ms':>11}{'p90 ms':>9}{'min ms':>9}{'max ms':>9}")
    medians = {}
    for name, values in samples.items():
        values.sort()
        medians[name] = statistics.median(values)
        p90 = values[min(len(values) - 1, int(0.9 * len(values)))]
        print(f"{name:<12}{medians[name]:>11.1f}{p90:>9}{values[0]:>9}{values[-1]:>9}")
    ratio = medians["sqlite"] / max(medians["postgresql"], 0.5)
    print(f"median ratio sqlite / postgresql: {ratio:.1f}x")


if __name__ == "__main__":
    main()
