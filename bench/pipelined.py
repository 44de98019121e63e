"""The pipelined worker against the serial one: the accelerator's idle fraction between
consecutive tasks and tasks/s, for a mix of the five functions, measured side by side in one
run (`VACE_PREFETCH=0` is the serial baseline, `VACE_PREFETCH=1` the pipelined worker).

    .venv/bin/python -m bench.pipelined [--tasks 6] [--rounds 3] [--step-ms 150] [--steps 10]
        [--no-tiny]

Two accelerators:

* SIMULATED: an engine stand-in whose denoising step waits on a timer (`time.sleep`, no CPU
  used) and returns blank frames. Everything else is real: the WorkerLoop on a SQLite store,
  media read and preprocessed by the weight-free annotators, frames rendered, encoded to MP4
  and stored. This is what a GPU worker looks like from the CPU's side.
* the tiny model: the real pipeline on the CPU. Here the "accelerator" is the same two cores
  the preprocessing and encoding run on, so pipelining can hide much less.

Idle fraction: over the span from the first denoising start to the last denoising end, the
share during which no task was denoising. Tasks/s: tasks / (time from the start of the loop
until the last task ended). Each mode runs `--rounds` rounds of `--tasks` tasks, the modes
alternated (after one uncounted warm-up task each); the figures are medians over the rounds.
`run()` returns the rows; `make bench` (bench/report.py) calls it.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from bench.preprocess import LocalMedia, _png
from vace_server.annotators.registry import load_annotators
from vace_server.engine.loader import LoadedModel, load_model
from vace_server.media.clip import MediaSource
from vace_server.media.encode import encode_mp4
from vace_server.settings import Settings
from vace_server.storage.local import LocalStorage
from vace_server.tasks import db
from vace_server.tasks.progress import Stage
from vace_server.tasks.spec import (
    Control,
    Outpaint,
    Reference,
    ReferenceRole,
    TaskSpec,
    VaceFunction,
)
from vace_server.tasks.status import TaskStatus
from vace_server.tasks.store import TaskStore
from vace_server.worker.loop import WorkerLoop
from vace_server.worker.pipeline import Denoised, PipelineResult, Prepared, TaskPipeline
from vace_server.worker.progress import ProgressHook

SIMULATED = "SIMULATED accelerator (timer-based denoise, no CPU)"
TINY = "tiny model (real pipeline, CPU)"
# Rounds per mode: serial and pipelined alternate, so a load change falls on both.
ROUNDS = 3
# The input clip: 3 s of 480x272 at 30 fps, a disc moving over a gradient.
WIDTH, HEIGHT, FPS, SECONDS = 480, 272, 30, 3


class SimulatedAccelerator(TaskPipeline):
    """The real prepare and deliver steps around a stand-in denoise: each step waits
    `step_seconds` on a timer (the CPU stays free, as with a GPU) and reports progress; the
    frames are blank at the generation size."""

    def __init__(self, *, step_seconds: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.step_seconds = step_seconds

    def _denoise(self, prepared: Prepared, on_progress: ProgressHook) -> Denoised:
        tracker, inputs = prepared.tracker, prepared.inputs
        on_progress(tracker.stage(Stage.DENOISING))
        steps = prepared.model.num_inference_steps
        for done in range(1, steps + 1):
            time.sleep(self.step_seconds)
            on_progress(tracker.step(done, steps))
        frames = np.zeros((inputs.num_frames, inputs.height, inputs.width, 3), np.float32)
        return Denoised(prepared=prepared, frames=frames)


class Timeline:
    """Wraps a pipeline and records when each denoise ran (monotonic seconds)."""

    def __init__(self, inner: TaskPipeline) -> None:
        self.inner = inner
        self.spans: list[tuple[float, float]] = []
        self._lock = threading.Lock()

    def prepare(self, spec: TaskSpec, media: MediaSource, *, on_progress: ProgressHook) -> Any:
        return self.inner.prepare(spec, media, on_progress=on_progress)

    def denoise(self, prepared: Any, *, on_progress: ProgressHook) -> Any:
        start = time.monotonic()
        try:
            return self.inner.denoise(prepared, on_progress=on_progress)
        finally:
            with self._lock:
                self.spans.append((start, time.monotonic()))

    def deliver(self, denoised: Any, out: Path, *, on_progress: ProgressHook) -> PipelineResult:
        return self.inner.deliver(denoised, out, on_progress=on_progress)

    def idle_fraction(self) -> float:
        spans = sorted(self.spans)
        if len(spans) < 2:
            return 0.0
        busy = sum(end - start for start, end in spans)
        whole = spans[-1][1] - spans[0][0]
        return max(0.0, 1.0 - busy / whole)


def _media(tmp: Path) -> LocalMedia:
    frames = np.empty((FPS * SECONDS, HEIGHT, WIDTH, 3), np.uint8)
    ramp = np.linspace(0, 200, WIDTH, dtype=np.uint8)
    for i in range(len(frames)):
        img = Image.fromarray(np.broadcast_to(ramp[None, :, None], (HEIGHT, WIDTH, 3)).copy())
        x = 60 + 3 * i
        ImageDraw.Draw(img).ellipse((x, 80, x + 90, 170), fill=(230, 40, 40))
        frames[i] = np.asarray(img)
    clip, short = tmp / "clip.mp4", tmp / "short.mp4"
    encode_mp4(frames, FPS, clip)
    encode_mp4(frames[: FPS // 2], FPS, short)  # 0.5 s: the clip video_extension extends
    mask = Image.new("L", (WIDTH, HEIGHT), 0)
    ImageDraw.Draw(mask).ellipse((60, 80, 150, 170), fill=255)
    subject = Image.new("RGB", (512, 512), (255, 255, 255))
    ImageDraw.Draw(subject).ellipse((128, 128, 384, 384), fill=(40, 90, 220))
    blobs = {"v": clip.read_bytes(), "c": short.read_bytes(), "m": _png(mask), "r": _png(subject)}
    return LocalMedia(blobs)


def five_functions() -> list[TaskSpec]:
    """One task of each function, over the bench's media ("v", "c", "m", "r")."""
    common: dict[str, Any] = {"prompt": "a ball", "seed": 1, "prompt_extend": False}
    return [
        TaskSpec(
            function=VaceFunction.IMAGE_REFERENCE,
            references=(Reference("r", ReferenceRole.SUBJECT),),
            size=(WIDTH, HEIGHT),
            **common,
        ),
        TaskSpec(
            function=VaceFunction.VIDEO_REPAINTING,
            video_url="v",
            control=Control.SCRIBBLE,
            **common,
        ),
        TaskSpec(function=VaceFunction.VIDEO_EDIT, video_url="v", mask_image_url="m", **common),
        TaskSpec(function=VaceFunction.VIDEO_EXTENSION, first_clip_url="c", **common),
        TaskSpec(
            function=VaceFunction.VIDEO_OUTPAINTING,
            video_url="v",
            outpaint=Outpaint(1.2, 1.2, 1.2, 1.2),
            **common,
        ),
    ]


def _drain(
    settings: Settings, pipeline: TaskPipeline, media: LocalMedia, tasks: int, tmp: Path
) -> dict[str, float]:
    """Submits `tasks` tasks (the five functions in turn) and runs one worker until every one
    ended. Returns tasks/s and the idle fraction."""
    engine = db.make_engine(f"sqlite:///{tmp / 'tasks.db'}")
    db.upgrade(engine)
    store = TaskStore(engine, lease_ms=60_000)
    specs = five_functions()
    ids = [
        store.create(specs[i % len(specs)], account="a", api_key_id="k", request_id="r").id
        for i in range(tasks)
    ]
    timeline = Timeline(pipeline)
    loop = WorkerLoop(
        settings=settings,
        store=store,
        storage=LocalStorage(tmp / "out", public_base_url="http://x", secret=b"s" * 32),
        model=pipeline.model,
        media=media,
        annotators=pipeline.annotators,
        worker_id="bench",
        pipeline=timeline,
    )

    def ended() -> bool:
        return all((t := store.get(i)) is not None and t.status not in _UNFINISHED for i in ids)

    start = time.monotonic()
    loop.run_forever(ended)
    wall = time.monotonic() - start
    failed = [i for i in ids if (t := store.get(i)) and t.status is not TaskStatus.SUCCEEDED]
    store.close()
    if failed:
        raise RuntimeError(f"{len(failed)} bench task(s) did not succeed")
    return {"tasks_per_s": tasks / wall, "idle_fraction": timeline.idle_fraction()}


_UNFINISHED = (TaskStatus.PENDING, TaskStatus.RUNNING)


def _compare(
    accelerator: str,
    settings: Settings,
    pipeline: TaskPipeline,
    tasks: int,
    tmp: Path,
    rounds: int = ROUNDS,
) -> list[dict[str, Any]]:
    """Serial and pipelined side by side: after one uncounted warm-up task each, `rounds`
    rounds of `tasks` tasks per mode, the two modes alternated and their order swapped every
    round, so that a load change on a shared machine falls on both. Each figure is the median
    over the rounds."""
    media = _media(tmp)
    modes = (("serial", 0), ("pipelined", 1))
    runs: dict[str, list[dict[str, float]]] = {mode: [] for mode, _ in modes}
    for round_no in range(-1, rounds):  # round -1: the warm-up
        for mode, prefetch in modes if round_no % 2 == 0 else modes[::-1]:
            folder = tmp / f"{mode}-{len(accelerator)}-{round_no + 1}"
            folder.mkdir()
            count = 1 if round_no < 0 else tasks
            got = _drain(settings.replace(prefetch=prefetch), pipeline, media, count, folder)
            if round_no >= 0:
                runs[mode].append(got)
    rows: list[dict[str, Any]] = []
    for mode, _ in modes:
        rows.append(
            {
                "accelerator": accelerator,
                "mode": mode,
                "tasks": tasks * rounds,
                **{k: statistics.median(r[k] for r in runs[mode]) for k in runs[mode][0]},
            }
        )
    serial, piped = rows
    rows.append(
        {
            "accelerator": accelerator,
            "mode": "pipelined / serial",
            "tasks": tasks * rounds,
            "tasks_per_s": piped["tasks_per_s"] / serial["tasks_per_s"],
            "idle_fraction": piped["idle_fraction"] / max(serial["idle_fraction"], 1e-9),
        }
    )
    return rows


def run(
    *,
    tasks: int = 6,
    step_ms: float = 150.0,
    steps: int = 10,
    tiny: bool = True,
    rounds: int = ROUNDS,
) -> list[dict[str, Any]]:
    """Serial vs pipelined on the simulated accelerator (and on the tiny model unless
    `tiny=False`), `rounds` rounds of `tasks` tasks per mode. Returns one row per accelerator
    and mode (`tasks_per_s`, `idle_fraction`: medians over the rounds; `tasks`: all rounds)
    plus a `pipelined / serial` ratio row per accelerator."""
    settings = Settings(
        model="tiny",
        annotator_dir=None,
        num_frames=33,
        generation_area=320 * 192,
        num_inference_steps=steps,
        poll_seconds=0.05,
        output_fps=16,
    )
    annotators = load_annotators(settings)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="vace-bench-") as tmp:
        model: LoadedModel = dataclasses.replace(load_model(settings), name="simulated")
        simulated = SimulatedAccelerator(
            step_seconds=step_ms / 1000, model=model, annotators=annotators, settings=settings
        )
        rows += _compare(SIMULATED, settings, simulated, tasks, Path(tmp), rounds)
        if tiny:
            tiny_settings = settings.replace(num_frames=17, generation_area=112 * 64)
            real = TaskPipeline(
                model=load_model(tiny_settings), annotators=annotators, settings=tiny_settings
            )
            rows += _compare(TINY, tiny_settings, real, tasks, Path(tmp), rounds)
    return rows


def format_rows(rows: list[dict[str, Any]]) -> str:
    lines = [f"{'accelerator':52s} {'mode':20s} {'tasks':>5s} {'tasks/s':>8s} {'idle':>7s}"]
    for row in rows:
        ratio = "/" in row["mode"]
        idle = f"{row['idle_fraction']:6.2f}x" if ratio else f"{row['idle_fraction']:7.1%}"
        rate = f"{row['tasks_per_s']:7.2f}x" if ratio else f"{row['tasks_per_s']:8.2f}"
        lines.append(f"{row['accelerator']:52s} {row['mode']:20s} {row['tasks']:5d} {rate} {idle}")
    return "\n".join(lines)


def markdown_rows(*, quick: bool = False) -> str:
    """The comparison as a markdown table for docs/benchmarks.md (`make bench`); `quick` (the
    smoke run) is a few tasks on the simulated accelerator only."""
    rows = run(tasks=2, step_ms=50.0, steps=3, tiny=False, rounds=1) if quick else run()
    lines = [
        "| accelerator | mode | tasks | tasks/s | accelerator idle between tasks |",
        "| --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        ratio = "/" in row["mode"]
        rate = f"{row['tasks_per_s']:.2f}x" if ratio else f"{row['tasks_per_s']:.2f}"
        idle = f"{row['idle_fraction']:.2f}x" if ratio else f"{row['idle_fraction']:.1%}"
        lines.append(f"| {row['accelerator']} | {row['mode']} | {row['tasks']} | {rate} | {idle} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=6, help="tasks per mode and round")
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    parser.add_argument("--step-ms", type=float, default=150.0, help="simulated step time")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--no-tiny", action="store_true", help="only the simulated accelerator")
    args = parser.parse_args()
    rows = run(
        tasks=args.tasks,
        step_ms=args.step_ms,
        steps=args.steps,
        tiny=not args.no_tiny,
        rounds=args.rounds,
    )
    print(format_rows(rows))


if __name__ == "__main__":
    main()
