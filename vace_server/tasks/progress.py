"""The progress vocabulary of a task, defined once: the closed set of stages, the share of the
whole task each running stage covers, and the typed progress record whose JSON form the worker
stores on the task and the query returns as `output.progress`.

Read by the worker (which reports it), the API (the query's progress fields), the
`vace-server generate` console and the playground (through the API's schema)."""

from __future__ import annotations

import enum
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from typing import Any


class Stage(enum.StrEnum):
    """Where a task is. `QUEUED` is a PENDING task's; the others are a running task's, in the
    order a run passes them (fetching and preprocessing alternate while media are read)."""

    QUEUED = "queued"
    FETCHING = "fetching"
    PREPROCESSING = "preprocessing"
    DENOISING = "denoising"
    DECODING = "decoding"
    ENCODING = "encoding"
    UPLOADING = "uploading"


@dataclass(frozen=True)
class PercentSpan:
    """The share of the whole task a stage covers: it starts at `start` percent and the next
    stage starts at `end` (denoising fills its span step by step)."""

    start: int
    end: int


# A queued task has no percent: nothing of it has run yet.
STAGE_SPANS: Mapping[Stage, PercentSpan] = {
    Stage.FETCHING: PercentSpan(0, 5),
    Stage.PREPROCESSING: PercentSpan(5, 10),
    Stage.DENOISING: PercentSpan(10, 90),
    Stage.DECODING: PercentSpan(90, 95),
    Stage.ENCODING: PercentSpan(95, 99),
    Stage.UPLOADING: PercentSpan(99, 100),
}

# What a person is shown for each stage (the playground's progress line).
STAGE_LABELS: Mapping[Stage, str] = {
    Stage.QUEUED: "Queued",
    Stage.FETCHING: "Fetching media",
    Stage.PREPROCESSING: "Preprocessing",
    Stage.DENOISING: "Denoising",
    Stage.DECODING: "Decoding",
    Stage.ENCODING: "Encoding",
    Stage.UPLOADING: "Storing the result",
}


@dataclass(frozen=True)
class TaskProgress:
    """One progress report. Fields left None are not part of the JSON form; the field order is
    the JSON form's key order (clients see exactly these keys)."""

    stage: Stage
    step: int | None = None  # denoising steps done
    total_steps: int | None = None
    percent: int | None = None  # of the whole task
    step_seconds: float | None = None  # the recent denoising step time (`recent_step_seconds`)
    eta_seconds: float | None = None  # recent step time x steps left
    queue_position: int | None = None  # a queued task's place (1 = next)
    message: str | None = None  # why a queued task waits (e.g. no worker can load the model)

    @classmethod
    def starting(cls, stage: Stage) -> TaskProgress:
        """A running stage that just began, at its span's start."""
        return cls(stage=stage, percent=STAGE_SPANS[stage].start)

    @classmethod
    def queued(cls, position: int, message: str | None = None) -> TaskProgress:
        return cls(stage=Stage.QUEUED, queue_position=position, message=message)

    @classmethod
    def denoising(cls, done: int, total: int, mean_step: float | None) -> TaskProgress:
        """After `done` of `total` steps; `mean_step` (the step time the ETA goes by) None
        before a step time is known."""
        span = STAGE_SPANS[Stage.DENOISING]
        percent = span.start + round((span.end - span.start) * done / max(total, 1))
        report = cls(stage=Stage.DENOISING, step=done, total_steps=total, percent=percent)
        if mean_step is None:
            return report
        eta = round(mean_step * (total - done), 1)
        return replace(report, step_seconds=round(mean_step, 3), eta_seconds=eta)

    def to_json(self) -> dict[str, Any]:
        """The stored / `output.progress` form: the set fields, the stage as its name."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is not None:
                out[f.name] = value.value if isinstance(value, Stage) else value
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TaskProgress:
        """The record of a stored form. Raises: ValueError for a missing or unknown stage or
        an unknown key."""
        unknown = set(data) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown progress keys: {sorted(unknown)}")
        stage = data.get("stage")
        if not isinstance(stage, str):
            raise ValueError(f"no progress stage: {stage!r}")
        return cls(**{**data, "stage": Stage(stage)})


# Steps the ETA's step time is the mean of: the latest ones, never the first while a later one
# is known (it carries warm-up: allocations, kernel selection, a compile; on a CPU run it was
# minutes where the others took seconds, and a mean over all steps promised hours).
RECENT_STEPS = 5


class ProgressTracker:
    """The progress of one run from its stage changes and denoising steps: percent from the
    stage spans, ETA from the recent step time (`recent_step_seconds`). Pure bookkeeping; the
    caller reports what it returns (to the store, to a console)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._step_started: float | None = None
        self._step_times: list[float] = []

    def stage(self, stage: Stage) -> TaskProgress:
        if stage is Stage.DENOISING:
            self._step_started = self._clock()
        return TaskProgress.starting(stage)

    def step(self, done: int, total: int) -> TaskProgress:
        """Denoising step callback: `done` of `total` steps finished. After the last step the
        run moves on to decoding at once, so that is what it returns then."""
        now = self._clock()
        if self._step_started is not None:
            self._step_times.append(now - self._step_started)
        self._step_started = now
        if done >= total:
            return self.stage(Stage.DECODING)
        return TaskProgress.denoising(done, total, self.recent_step_seconds)

    @property
    def step_times(self) -> list[float]:
        return list(self._step_times)

    @property
    def mean_step_seconds(self) -> float | None:
        """Over every step (what the run cost: recorded with the task)."""
        times = self._step_times
        return sum(times) / len(times) if times else None

    @property
    def recent_step_seconds(self) -> float | None:
        """Over the last `RECENT_STEPS` steps, the first step left out once a later one is
        known (what the remaining steps will take)."""
        times = self._step_times[1:] if len(self._step_times) > 1 else self._step_times
        recent = times[-RECENT_STEPS:]
        return sum(recent) / len(recent) if recent else None
