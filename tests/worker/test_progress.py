from __future__ import annotations

import threading

import pytest

from tests.support.clock import FakeClock
from tests.tasks.test_store import SPEC
from vace_server.tasks.progress import ProgressTracker, Stage
from vace_server.tasks.store import TaskStore
from vace_server.worker.progress import Progress, TaskCanceled


class Ticker:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def _progress(store: TaskStore, ticker: Ticker, canceled: threading.Event) -> Progress:
    store.create(SPEC, account="a", api_key_id="k", request_id="r")
    claim = store.claim("w")
    assert claim is not None
    return Progress(store, claim, canceled, min_interval=1.0, clock=ticker)


def _stored(store: TaskStore, progress: Progress) -> dict[str, object] | None:
    assert progress.writer.wait_idle()  # writes happen on the writer's thread
    task = store.get(progress.claim.task.id)
    assert task is not None
    return task.progress


def test_steps_report_percent_and_eta_throttled(store: TaskStore, clock: FakeClock) -> None:
    ticker = Ticker()
    progress = _progress(store, ticker, threading.Event())
    tracker = ProgressTracker(clock=ticker)
    progress(tracker.stage(Stage.DENOISING))
    assert _stored(store, progress) == {"stage": "denoising", "percent": 10}
    ticker.t = 2.0
    progress(tracker.step(1, 4))
    assert _stored(store, progress) == {
        "stage": "denoising",
        "step": 1,
        "total_steps": 4,
        "percent": 30,
        "step_seconds": 2.0,
        "eta_seconds": 6.0,
    }
    ticker.t = 2.5  # within the throttle window: not written
    progress(tracker.step(2, 4))
    stored = _stored(store, progress)
    assert stored is not None and stored["step"] == 1
    ticker.t = 4.0
    progress(tracker.step(3, 4))
    ticker.t = 6.0
    progress(tracker.step(4, 4))  # last step: moves on to decoding at once
    assert _stored(store, progress) == {"stage": "decoding", "percent": 90}
    assert tracker.step_times == [2.0, 0.5, 1.5, 2.0]


def test_cancel_is_raised_at_the_next_checkpoint(store: TaskStore) -> None:
    canceled = threading.Event()
    progress = _progress(store, Ticker(), canceled)
    tracker = ProgressTracker(clock=Ticker())
    progress(tracker.stage(Stage.DENOISING))
    progress(tracker.step(1, 10))
    canceled.set()
    with pytest.raises(TaskCanceled):
        progress(tracker.step(2, 10))
    with pytest.raises(TaskCanceled):
        progress(tracker.stage(Stage.ENCODING))
