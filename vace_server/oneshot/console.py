"""The `rich` progress display of `vace-server generate`."""

from __future__ import annotations

from collections.abc import Mapping

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

from vace_server.api.wire_names import wire_message
from vace_server.tasks.progress import Stage, TaskProgress


# ---------------------------------------------------------------- progress
class ConsoleProgress:
    """Stages and denoising steps on a `rich` progress display: the pipeline's progress hook
    (as the worker's `Progress` is), one row per stage, with the step count, the mean step
    time and the ETA the server reports."""

    # fetching and preprocessing alternate while the inputs are read: one row
    _LABELS: Mapping[Stage, str] = {
        Stage.FETCHING: "inputs",
        Stage.PREPROCESSING: "inputs",
        Stage.DENOISING: "denoising",
        Stage.DECODING: "decoding",
        Stage.ENCODING: "encoding",
    }

    def __init__(self, console: Console) -> None:
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

    def loading(self, model: str) -> None:
        """The row of loading the model, before the task runs."""
        self._show("loading model", model)

    def __call__(self, progress: TaskProgress, detail: str = "") -> None:
        self._show(self._LABELS.get(progress.stage, progress.stage.value), detail)
        if progress.step is None or progress.total_steps is None or self._row is None:
            return
        info = f"step {progress.step}/{progress.total_steps}"
        if progress.step_seconds is not None and progress.eta_seconds is not None:
            info += f"  {progress.step_seconds:.2f} s/step  ETA {_clock_text(progress.eta_seconds)}"
        self._display.update(
            self._row, total=progress.total_steps, completed=progress.step, info=info
        )

    def _show(self, label: str, detail: str) -> None:
        if label != self._label:
            self._finish_row()
            self._row = self._display.add_task(label, total=None, info="", failed=False)
            self._label = label
        assert self._row is not None
        # the detail names fields by their mentions (StagedMedia): shown as wire names
        description = f"{label}: {wire_message(detail)}" if detail else label
        self._display.update(self._row, description=description)

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
