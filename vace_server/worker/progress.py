"""Progress of a running task, written to the store (throttled, best effort, off the pipeline's
thread), and the checkpoint where a cancel request or a shutdown stops the run."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from PIL import Image

from vace_server.errors import InputField
from vace_server.media.clip import MediaSource, VideoClip
from vace_server.tasks.store import Claim, TaskStore
from vace_server.worker.bookkeeping import LatestWriter

# Share of the whole task each stage ends at (denoising fills the span before "decoding").
STAGE_END_PERCENT = {
    "fetching": 5,
    "preprocessing": 10,
    "denoising": 90,
    "decoding": 95,
    "encoding": 99,
    "uploading": 100,
}
STAGE_START_PERCENT = {
    "fetching": 0,
    "preprocessing": 5,
    "denoising": 10,
    "decoding": 90,
    "encoding": 95,
    "uploading": 99,
}


class ProgressSink(Protocol):
    """Where a run reports: the worker's store-backed `Progress` or the CLI's display.
    Any call may raise to stop the run (the worker's cancel checkpoint)."""

    def stage(self, name: str) -> None: ...

    def step(self, done: int, total: int) -> None: ...


class TaskCanceled(Exception):
    """Raised at a checkpoint (e.g. from the denoising step callback) after a cancel request."""


class TaskInterrupted(TaskCanceled):
    """Raised at a checkpoint when the worker is shutting down and its grace period is over:
    the task goes back to the queue (see `TaskStore.requeue_interrupted`)."""


class Progress:
    """Tracks stage / step / ETA; flushes to the store at most every `min_interval` seconds
    (stage changes always flush) through a `LatestWriter`, so a database outage never slows or
    fails the run. Every call is also a cancel / shutdown checkpoint. `close()` when done."""

    def __init__(
        self,
        store: TaskStore,
        claim: Claim,
        canceled: threading.Event,
        *,
        interrupted: threading.Event | None = None,
        min_interval: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.claim = claim
        self.canceled = canceled
        self.interrupted = interrupted or threading.Event()
        self.writer = LatestWriter(lambda state: store.set_progress(claim, state), what="progress")
        self.min_interval = min_interval
        self._clock = clock
        self._last_flush = float("-inf")
        self._step_started: float | None = None
        self._step_times: list[float] = []
        self.state: dict[str, Any] = {}

    def stage(self, name: str) -> None:
        self.check_cancel()
        self.state = {"stage": name, "percent": STAGE_START_PERCENT[name]}
        if name == "denoising":
            self._step_started = self._clock()
        self._flush(force=True)

    def step(self, done: int, total: int) -> None:
        """Denoising step callback: `done` of `total` steps finished."""
        now = self._clock()
        if self._step_started is not None:
            self._step_times.append(now - self._step_started)
        self._step_started = now
        mean = sum(self._step_times) / len(self._step_times) if self._step_times else None
        span = STAGE_END_PERCENT["denoising"] - STAGE_START_PERCENT["denoising"]
        self.state = {
            "stage": "denoising",
            "step": done,
            "total_steps": total,
            "percent": STAGE_START_PERCENT["denoising"] + round(span * done / max(total, 1)),
        }
        if mean is not None:
            self.state["step_seconds"] = round(mean, 3)
            self.state["eta_seconds"] = round(mean * (total - done), 1)
        self.check_cancel()  # before decoding: a canceled run never decodes
        if done >= total:
            self.stage("decoding")
        else:
            self._flush()

    @property
    def step_times(self) -> list[float]:
        return list(self._step_times)

    def check_cancel(self) -> None:
        if self.canceled.is_set():
            raise TaskCanceled()
        if self.interrupted.is_set():
            raise TaskInterrupted()

    def close(self) -> None:
        """Stops the writer (the last state gets a moment to be written)."""
        self.writer.close()

    def _flush(self, *, force: bool = False) -> None:
        now = self._clock()
        if force or now - self._last_flush >= self.min_interval:
            self._last_flush = now
            self.writer.submit(self.state)


class StagedMedia:
    """MediaSource wrapper: "fetching" while a download runs, "preprocessing" in between."""

    def __init__(self, inner: MediaSource, progress: ProgressSink) -> None:
        self.inner = inner
        self.progress = progress

    def fetch_image(self, url: str, field: InputField) -> Image.Image:
        self.progress.stage("fetching")
        try:
            return self.inner.fetch_image(url, field)
        finally:
            self.progress.stage("preprocessing")

    def fetch_mask_image(self, url: str, field: InputField) -> Image.Image:
        self.progress.stage("fetching")
        try:
            return self.inner.fetch_mask_image(url, field)
        finally:
            self.progress.stage("preprocessing")

    def fetch_video(self, url: str, field: InputField, *, max_seconds: float) -> VideoClip:
        self.progress.stage("fetching")
        try:
            return self.inner.fetch_video(url, field, max_seconds=max_seconds)
        finally:
            self.progress.stage("preprocessing")
