"""Progress reporting of a running task: the hook the pipeline reports to, the worker's
store-backed hook (throttled, best effort, off the pipeline's thread; also the checkpoint where
a cancel request or a shutdown stops the run), and the media wrapper that reports fetching.

The vocabulary itself (stages, percent spans, the progress record) is `tasks.progress`."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Protocol

from PIL import Image

from vace_server.errors import InputField
from vace_server.media.clip import MediaSource, VideoClip
from vace_server.tasks.progress import ProgressTracker, Stage, TaskProgress
from vace_server.tasks.store import Claim, TaskStore
from vace_server.worker.bookkeeping import LatestWriter
from vace_server.worker.timings import StageTimings


class ProgressHook(Protocol):
    """Where a run reports: the worker's `Progress` or the CLI's console. `detail` is for a
    person (e.g. the field being read, as an `InputField` mention: a hook that shows it maps it
    with `api.wire_names.wire_message`) and is not stored. A hook may raise to stop the run
    (the worker's cancel checkpoint)."""

    def __call__(self, progress: TaskProgress, detail: str = "") -> None: ...


class TaskCanceled(Exception):
    """Raised at a checkpoint (e.g. from the denoising step callback) after a cancel request."""


class TaskInterrupted(TaskCanceled):
    """Raised at a checkpoint when the worker is shutting down and its grace period is over:
    the task goes back to the queue (see `TaskStore.requeue_interrupted`)."""


class Progress:
    """The worker's hook: keeps the latest report and flushes it to the store at most every
    `min_interval` seconds (a stage change always flushes) through a `LatestWriter`, so a
    database outage never slows or fails the run. Every report is also a cancel / shutdown
    checkpoint. `close()` when done."""

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
        self.state: TaskProgress | None = None

    def __call__(self, progress: TaskProgress, detail: str = "") -> None:
        self.check_cancel()  # before anything is written: a canceled run reports nothing more
        self.state = progress
        self._flush(progress, force=progress.step is None)  # only steps are throttled

    def check_cancel(self) -> None:
        if self.canceled.is_set():
            raise TaskCanceled()
        if self.interrupted.is_set():
            raise TaskInterrupted()

    def close(self) -> None:
        """Stops the writer (the last state gets a moment to be written)."""
        self.writer.close()

    def _flush(self, progress: TaskProgress, *, force: bool) -> None:
        now = self._clock()
        if force or now - self._last_flush >= self.min_interval:
            self._last_flush = now
            self.writer.submit(progress.to_json())


class StagedMedia:
    """MediaSource wrapper: "fetching" (with the field being read) while a download runs,
    "preprocessing" in between. The worker and the console both read media through it."""

    def __init__(
        self,
        inner: MediaSource,
        tracker: ProgressTracker,
        hook: ProgressHook,
        timings: StageTimings | None = None,
    ) -> None:
        """`timings` gets each read's wall time as its `fetch` stage."""
        self.inner = inner
        self.tracker = tracker
        self.hook = hook
        self.timings = timings

    @contextmanager
    def _fetching(self, field: InputField) -> Iterator[None]:
        self.hook(self.tracker.stage(Stage.FETCHING), f"reading {field.mention}")
        start = time.perf_counter()
        try:
            yield
        finally:
            if self.timings is not None:
                self.timings.add("fetch", time.perf_counter() - start)
            self.hook(self.tracker.stage(Stage.PREPROCESSING))

    def fetch_image(self, url: str, field: InputField) -> Image.Image:
        with self._fetching(field):
            return self.inner.fetch_image(url, field)

    def fetch_mask_image(self, url: str, field: InputField) -> Image.Image:
        with self._fetching(field):
            return self.inner.fetch_mask_image(url, field)

    def fetch_video(self, url: str, field: InputField, *, max_seconds: float) -> VideoClip:
        with self._fetching(field):
            return self.inner.fetch_video(url, field, max_seconds=max_seconds)
