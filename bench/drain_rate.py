"""Tasks per second drained by 1 vs 2 standalone workers (`vace-server worker`) on the tiny
model, next to an API-only replica (`VACE_WORKERS=0`) on a shared SQLite database.

    .venv/bin/python -m bench.drain_rate [--tasks 20] [--size 960*960] [--threads N]

For each worker count: a fresh data folder, the API, N worker processes, one warm-up task per
worker, then `--tasks` image_reference tasks submitted at once; the rate is tasks / (time from
the first submission until the last task SUCCEEDED). Both runs happen in one invocation, so
the ratio is comparable even on a noisy machine. The tiny model is CPU-bound: on a 2-core
machine two workers compete for the same cores (and with the API and the encoder), so expect
well under 2x there; on GPUs each worker has its own device. `--threads N` sets
OMP_NUM_THREADS=N for each worker (torch's intra-op threads): without it every CPU worker
starts as many threads as there are cores, and two of them oversubscribe a 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from tests.support.images import png_bytes, subject_on_white
from tests.support.live_server import LiveServer
from tests.support.media_server import MediaServer, Served


def _body(url: str, size: str) -> dict[str, Any]:
    return {
        "model": "wanx2.1-vace-plus",
        "input": {"function": "image_reference", "prompt": "a ball", "ref_images_url": [url]},
        "parameters": {"size": size, "seed": 7},
    }


def _wait_all(server: LiveServer, ids: list[str], timeout: float) -> None:
    pending = set(ids)
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        for task_id in list(pending):
            status = server.query(task_id)["output"]["task_status"]
            if status == "SUCCEEDED":
                pending.discard(task_id)
            elif status in ("FAILED", "CANCELED", "UNKNOWN"):
                raise RuntimeError(f"task {task_id} ended {status}")
        time.sleep(0.05)
    if pending:
        raise RuntimeError(f"{len(pending)} task(s) not done in {timeout}s")


def drain(
    workers: int, tasks: int, size: str, media: MediaServer, root: Path, threads: int | None
) -> dict[str, Any]:
    folder = root / f"w{workers}"
    folder.mkdir(parents=True)
    server = LiveServer(folder / "data", folder / "server.log", VACE_WORKERS="0").start()
    procs: list[subprocess.Popen[bytes]] = []
    env = dict(server.env)
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    try:
        for i in range(workers):
            log = (folder / f"worker-{i}.log").open("wb")
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "vace_server", "worker"],
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            r = httpx.get(f"{server.base_url}/ready", timeout=5)
            if r.status_code == 200 and r.json()["workers"] == workers:
                break
            time.sleep(0.2)
        else:
            raise RuntimeError(f"{workers} worker(s) not ready")
        url = media.url("/subject.png")
        _wait_all(server, [server.submit(_body(url, size)) for _ in range(workers)], 300)
        started = time.monotonic()
        ids = [server.submit(_body(url, size)) for _ in range(tasks)]
        _wait_all(server, ids, 600)
        seconds = time.monotonic() - started
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
        server.stop()
    return {
        "workers": workers,
        "tasks": tasks,
        "seconds": round(seconds, 2),
        "tasks_per_second": round(tasks / seconds, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=20)
    parser.add_argument("--size", default="960*960")
    parser.add_argument("--threads", type=int, default=None, help="OMP_NUM_THREADS per worker")
    args = parser.parse_args()
    os.environ.setdefault("VACE_LOG_LEVEL", "WARNING")
    with tempfile.TemporaryDirectory(prefix="vace-drain-") as tmp, MediaServer() as media:
        media.add("/subject.png", Served(png_bytes(subject_on_white()), "image/png"))
        one = drain(1, args.tasks, args.size, media, Path(tmp), args.threads)
        two = drain(2, args.tasks, args.size, media, Path(tmp), args.threads)
    report = {
        "cpus": os.cpu_count(),
        "model": "tiny",
        "size": args.size,
        "threads_per_worker": args.threads or "default (all cores)",
        "one_worker": one,
        "two_workers": two,
        "ratio": round(two["tasks_per_second"] / one["tasks_per_second"], 2),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
