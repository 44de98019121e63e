"""The `rich` progress display of `vace-server generate`."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager

from PIL import Image
from rich.console import Console, RenderableType
from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text

from vace_server.api.wire_names import wire_name
from vace_server.errors import InputField
from vace_server.media.clip import MediaSource, VideoClip


# ---------------------------------------------------------------- progress
class ConsoleProgress:
    """Stages and denoising steps on a `rich` progress display.

    Same protocol as the worker's `Progress` (`stage(name)`, `step(done, total)`), so the
    pipeline code can report to either; the ETA is the mean step time times the steps left,
    as the server reports it."""

    _LABELS: Mapping[str, str] = {
        "loading": "loading model",
        "fetching": "inputs",
        "preprocessing": "inputs",
        "prompt": "prompt",
        "denoising": "denoising",
        "decoding": "decoding",
        "encoding": "encoding",
    }

    def __init__(self, console: Console, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._display = Progress(
            _StatusColumn(finished_text="[green]✓"),
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(),
            console=console,
        )
        self._row: TaskID | None = None
        self._label: str | None = None
        self._step_started: float | None = None
        self.step_times: list[float] = []

    def __enter__(self) -> ConsoleProgress:
        self._display.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is None:
            self._finish_row()
        elif self._row is not None:
            self._display.update(self._row, failed=True)
            self._display.stop_task(self._row)
        self._display.stop()

    def stage(self, name: str, detail: str = "") -> None:
        label = self._LABELS.get(name, name)
        if label != self._label:
            self._finish_row()
            self._row = self._display.add_task(label, total=None, info="", failed=False)
            self._label = label
        assert self._row is not None
        description = f"{label}: {detail}" if detail else label
        self._display.update(self._row, description=description)
        if name == "denoising":
            self._step_started = self._clock()

    def step(self, done: int, total: int) -> None:
        """Denoising step callback: `done` of `total` steps finished."""
        now = self._clock()
        if self._step_started is not None:
            self.step_times.append(now - self._step_started)
        self._step_started = now
        info = f"step {done}/{total}"
        if self.step_times:
            mean = sum(self.step_times) / len(self.step_times)
            info += f"  {mean:.2f} s/step  ETA {_clock_text(mean * (total - done))}"
        if self._row is not None:
            self._display.update(self._row, total=total, completed=done, info=info)
        if done >= total:
            self.stage("decoding")

    def _finish_row(self) -> None:
        if self._row is None:
            return
        task = self._display.tasks[self._row]
        total = task.total if task.total is not None else 1
        self._display.update(self._row, total=total, completed=total)
        self._display.stop_task(self._row)
        self._row = self._label = None


class _StatusColumn(SpinnerColumn):
    """A spinner while a stage runs, ✓ when it is done, a red ✗ when it failed."""

    def render(self, task: Task) -> RenderableType:
        if task.fields.get("failed"):
            return Text("✗", style="bold red")
        return super().render(task)


def _clock_text(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


class ConsoleStagedMedia:
    """Reports which field is being read (the CLI twin of worker.progress.StagedMedia)."""

    def __init__(self, inner: MediaSource, progress: ConsoleProgress) -> None:
        self.inner = inner
        self.progress = progress

    @contextmanager
    def _fetching(self, field: InputField) -> Iterator[None]:
        self.progress.stage("fetching", f"reading {wire_name(field)}")
        try:
            yield
        finally:
            self.progress.stage("preprocessing")

    def fetch_image(self, url: str, field: InputField) -> Image.Image:
        with self._fetching(field):
            return self.inner.fetch_image(url, field)

    def fetch_mask_image(self, url: str, field: InputField) -> Image.Image:
        with self._fetching(field):
            return self.inner.fetch_mask_image(url, field)

    def fetch_video(self, url: str, field: InputField, *, max_seconds: float) -> VideoClip:
        with self._fetching(field):
            return self.inner.fetch_video(url, field, max_seconds=max_seconds)
