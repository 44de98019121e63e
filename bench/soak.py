"""Soak: minutes of a steady mix of all five functions on the tiny model against a live
`vace-server serve`, with worker kills injected, watching the API process's memory and file
descriptors.

    .venv/bin/python -m bench.soak [--minutes 3] [--kill-every 20] [--in-flight 3]
                                   [--workers 1] [--bad-every 11] [--drain 180]

The script starts everything itself on loopback: a media server with generated tiny media
(64 px, 17 frames), and `serve` (VACE_MODEL=tiny, 17 frames, a temporary data folder). It keeps
`--in-flight` tasks outstanding, cycling through the five functions (every `--bad-every`-th
submission points at a missing file, so the failure path is exercised too), and SIGKILLs one
worker child of `serve` every `--kill-every` seconds (the supervisor restarts it; its task is
retried). After `--minutes` it stops submitting and waits up to `--drain` seconds for every
accepted task to end. RSS and open fds of the API process are read from /proc once a second.

It prints one JSON report: submitted / succeeded / failed by code / canceled / lost (must be 0:
accepted but not ended after the drain, or unknown to the server) / kills / memory and fd
growth (first sample after warm-up → last sample after the drain, and the peak). Exits 1 when
a task was lost. Throughput depends on the machine (and anything else running on it).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from PIL import Image

from tests.support.images import png_bytes, scene, subject_on_white
from tests.support.live_server import LiveServer
from tests.support.media_server import MediaServer, Served
from tests.support.videos import moving_square_frames, mp4_bytes, square_box

MODEL = "wanx2.1-vace-plus"
TERMINAL = ("SUCCEEDED", "FAILED", "CANCELED")


@dataclass
class Config:
    minutes: float = 3.0
    kill_every: float = 20.0  # seconds between worker SIGKILLs; 0 = none
    in_flight: int = 3
    workers: int = 1
    bad_every: int = 11  # every n-th submission fetches a missing file (coprime with 5, so
    # each function gives up its turn equally often); 0 = never
    drain: float = 180.0
    poll: float = 0.3


@dataclass
class Tally:
    submitted: int = 0
    refused: Counter[str] = field(default_factory=Counter)  # HTTP status of refused submits
    ended: dict[str, dict[str, Any]] = field(default_factory=dict)  # task id → final output
    open: dict[str, str] = field(default_factory=dict)  # task id → function, not yet ended
    vanished: list[str] = field(default_factory=list)
    function: dict[str, str] = field(default_factory=dict)  # task id → function
    kills: int = 0


def serve_media(media: MediaServer) -> dict[str, str]:
    """Tiny inputs for every function; returns name → URL."""
    frames = moving_square_frames(n=17, size=(64, 64))
    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, square_box(0, size=(64, 64)))
    return {
        "clip": media.add("/clip.mp4", Served(mp4_bytes(frames, 16), "video/mp4")),
        "short": media.add("/short.mp4", Served(mp4_bytes(frames[:8], 16), "video/mp4")),
        "mask": media.add("/mask.png", Served(png_bytes(mask), "image/png")),
        "subject": media.add("/subject.png", Served(png_bytes(subject_on_white()), "image/png")),
        "scene": media.add("/scene.png", Served(png_bytes(scene()), "image/png")),
        "missing": media.url("/missing.png"),  # 404: the task fails with a download error
    }


def body_for(n: int, urls: dict[str, str], bad_every: int) -> dict[str, Any]:
    """The n-th submission of the mix: the five functions in turn; every `bad_every`-th one an
    image_reference whose reference image is missing (it ends FAILED)."""
    no_extend = {"prompt_extend": False, "seed": n}
    if bad_every and n % bad_every == bad_every - 1:
        bad = {"function": "image_reference", "ref_images_url": [urls["missing"]]}
        return {"model": MODEL, "input": {"prompt": f"soak {n}", **bad}, "parameters": no_extend}
    subject = urls["subject"]
    kinds: list[tuple[dict[str, Any], dict[str, Any]]] = [
        (
            {"function": "image_reference", "ref_images_url": [subject, urls["scene"]]},
            {**no_extend, "obj_or_bg": ["obj", "bg"], "size": "960*960"},
        ),
        (
            {
                "function": "video_repainting",
                "video_url": urls["clip"],
                "ref_images_url": [subject],
            },
            {**no_extend, "control_condition": "scribble", "strength": 0.8},
        ),
        (
            {
                "function": "video_edit",
                "video_url": urls["clip"],
                "mask_image_url": urls["mask"],
                "ref_images_url": [subject],
            },
            {**no_extend, "mask_type": "fixed"},
        ),
        (
            {"function": "video_extension", "first_clip_url": urls["short"]},
            no_extend,
        ),
        (
            {"function": "video_outpainting", "video_url": urls["clip"]},
            {**no_extend, "top_scale": 1.5, "left_scale": 1.25},
        ),
    ]
    inputs, params = kinds[n % len(kinds)]
    return {"model": MODEL, "input": {"prompt": f"soak {n}", **inputs}, "parameters": params}


def proc_sample(pid: int) -> tuple[int, int]:
    """(RSS in kB, open file descriptors) of `pid`, from /proc."""
    rss = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1])
    return rss, len(os.listdir(f"/proc/{pid}/fd"))


def worker_pids(server: LiveServer) -> list[int]:
    """Live worker processes: the pids /health reports that are children of our `serve`."""
    assert server.proc is not None
    parent = server.proc.pid
    pids = []
    for worker in server.health().get("workers", []):
        pid = worker.get("pid")
        if not pid or not worker.get("alive", True):
            continue
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == parent:  # field 4: the parent pid
            pids.append(int(pid))
    return pids


class Soak:
    def __init__(self, server: LiveServer, urls: dict[str, str], config: Config) -> None:
        self.server = server
        self.urls = urls
        self.config = config
        self.tally = Tally()
        self.samples: list[tuple[float, int, int]] = []  # (t, rss kB, fds)
        self.client = httpx.Client(headers=server.headers(), timeout=30)
        self._next_kill = time.monotonic() + config.kill_every
        self._victim = 0

    def run(self) -> dict[str, Any]:
        started = time.monotonic()
        stop_at = started + self.config.minutes * 60
        while time.monotonic() < stop_at:
            self._top_up()
            self._tick()
        drain_until = time.monotonic() + self.config.drain
        while self.tally.open and time.monotonic() < drain_until:  # no more kills
            self._tick(kill=False)
        self._poll_open()  # one last look at whatever is still open
        self._sample()
        self.client.close()
        return self.report(time.monotonic() - started)

    # ------------------------------------------------------------------ one loop turn
    def _tick(self, *, kill: bool = True) -> None:
        self._sample()
        if kill:
            self._maybe_kill()
        self._poll_open()
        time.sleep(self.config.poll)

    def _top_up(self) -> None:
        while len(self.tally.open) < self.config.in_flight:
            n = self.tally.submitted + sum(self.tally.refused.values())
            body = body_for(n, self.urls, self.config.bad_every)
            r = self.client.post(
                f"{self.server.api}/services/aigc/video-generation/video-synthesis", json=body
            )
            if r.status_code != 200:
                self.tally.refused[f"{r.status_code} {r.json().get('code')}"] += 1
                return
            self.tally.submitted += 1
            task_id = r.json()["output"]["task_id"]
            self.tally.open[task_id] = self.tally.function[task_id] = body["input"]["function"]

    def _poll_open(self) -> None:
        for task_id in list(self.tally.open):
            r = self.client.get(f"{self.server.api}/tasks/{task_id}")
            output = r.json().get("output", {}) if r.status_code == 200 else {}
            status = output.get("task_status")
            if status in TERMINAL:
                self.tally.ended[task_id] = output
                del self.tally.open[task_id]
            elif status == "UNKNOWN" or r.status_code == 404:
                self.tally.vanished.append(task_id)
                del self.tally.open[task_id]

    def _maybe_kill(self) -> None:
        if not self.config.kill_every or time.monotonic() < self._next_kill:
            return
        pids = worker_pids(self.server)
        if not pids:
            return  # all restarting: try again on the next turn
        pid = pids[self._victim % len(pids)]
        self._victim += 1
        os.kill(pid, signal.SIGKILL)
        self.tally.kills += 1
        self._next_kill = time.monotonic() + self.config.kill_every

    def _sample(self) -> None:
        if self.samples and time.monotonic() - self.samples[-1][0] < 1.0:
            return
        assert self.server.proc is not None
        rss, fds = proc_sample(self.server.proc.pid)
        self.samples.append((time.monotonic(), rss, fds))

    # ------------------------------------------------------------------ the report
    def report(self, seconds: float) -> dict[str, Any]:
        t = self.tally
        failed = Counter(
            o.get("code", "?") for o in t.ended.values() if o["task_status"] == "FAILED"
        )
        by_status = Counter(o["task_status"] for o in t.ended.values())
        first, last = self.samples[min(len(self.samples) - 1, 5)], self.samples[-1]  # after warm-up
        return {
            "seconds": round(seconds, 1),
            "config": vars(self.config),
            "submitted": t.submitted,
            "refused_at_submit": dict(t.refused),
            "succeeded": by_status["SUCCEEDED"],
            "succeeded_by_function": dict(
                Counter(
                    t.function[i] for i, o in t.ended.items() if o["task_status"] == "SUCCEEDED"
                )
            ),
            "failed_by_code": dict(failed),
            "canceled": by_status["CANCELED"],
            "lost": len(t.open) + len(t.vanished),
            "lost_ids": sorted(t.open) + t.vanished,
            "worker_kills": t.kills,
            "api_rss_mb": {
                "start": round(first[1] / 1024, 1),
                "end": round(last[1] / 1024, 1),
                "peak": round(max(s[1] for s in self.samples) / 1024, 1),
                "growth": round((last[1] - first[1]) / 1024, 1),
            },
            "api_fds": {
                "start": first[2],
                "end": last[2],
                "peak": max(s[2] for s in self.samples),
                "growth": last[2] - first[2],
            },
            "samples": len(self.samples),
        }


def run_soak(config: Config, workdir: Path) -> dict[str, Any]:
    """Starts the media server and `serve` under `workdir`, soaks, stops them; the report."""
    with MediaServer() as media:
        urls = serve_media(media)
        server = LiveServer(
            workdir / "data",
            workdir / "server.log",
            VACE_WORKERS=str(config.workers),
            VACE_LOG_LEVEL=os.environ.get("VACE_LOG_LEVEL", "WARNING"),
        ).start()
        try:
            report = Soak(server, urls, config).run()
        finally:
            server.stop()
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    defaults = Config()
    for name, value in vars(defaults).items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=type(value), default=value)
    parser.add_argument("--keep", action="store_true", help="keep the data folder and logs")
    args = parser.parse_args()
    keep = args.__dict__.pop("keep")
    config = Config(**vars(args))
    workdir = Path(tempfile.mkdtemp(prefix="vace-soak-"))
    report = run_soak(config, workdir)
    if keep:
        report["workdir"] = str(workdir)
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    print(json.dumps(report, indent=2))
    sys.exit(1 if report["lost"] else 0)


if __name__ == "__main__":
    main()
