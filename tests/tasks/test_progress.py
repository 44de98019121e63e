"""The progress vocabulary: stages, their percent spans, the stored / client-visible form."""

from __future__ import annotations

import pytest

from vace_server.tasks.progress import (
    STAGE_LABELS,
    STAGE_SPANS,
    ProgressTracker,
    Stage,
    TaskProgress,
)


def test_the_running_stages_cover_0_to_100_percent_in_order() -> None:
    running = [s for s in Stage if s is not Stage.QUEUED]
    assert list(STAGE_SPANS) == running
    starts = [STAGE_SPANS[s].start for s in running]
    ends = [STAGE_SPANS[s].end for s in running]
    assert starts[0] == 0 and ends[-1] == 100
    assert starts[1:] == ends[:-1]  # each stage starts where the one before ends
    assert set(STAGE_LABELS) == set(Stage)


def test_the_json_forms_clients_see() -> None:
    # key order included: the query returns these dicts as they are
    starting = TaskProgress.starting(Stage.DECODING).to_json()
    assert list(starting.items()) == [("stage", "decoding"), ("percent", 90)]
    step = TaskProgress.denoising(1, 4, mean_step=2.0).to_json()
    assert list(step.items()) == [
        ("stage", "denoising"),
        ("step", 1),
        ("total_steps", 4),
        ("percent", 30),
        ("step_seconds", 2.0),
        ("eta_seconds", 6.0),
    ]
    assert TaskProgress.denoising(0, 0, mean_step=None).to_json() == {
        "stage": "denoising",
        "step": 0,
        "total_steps": 0,
        "percent": 10,
    }
    queued = TaskProgress.queued(3, "no worker can run this model: x").to_json()
    assert list(queued) == ["stage", "queue_position", "message"]
    assert TaskProgress.queued(1).to_json() == {"stage": "queued", "queue_position": 1}


def test_stored_forms_read_back_and_unknown_ones_are_refused() -> None:
    for report in (
        TaskProgress.starting(Stage.UPLOADING),
        TaskProgress.denoising(3, 10, mean_step=0.1234),
        TaskProgress.queued(2, "why"),
    ):
        assert TaskProgress.from_json(report.to_json()) == report
    partial = {"stage": "denoising", "step": 3, "total_steps": 10}  # an older worker's form
    assert TaskProgress.from_json(partial).to_json() == partial
    for bad in ({"stage": "thinking"}, {"percent": 5}, {"stage": "queued", "colour": "red"}):
        with pytest.raises(ValueError):
            TaskProgress.from_json(bad)


def test_the_tracker_times_steps_and_moves_on_to_decoding_after_the_last() -> None:
    now = [0.0]
    tracker = ProgressTracker(clock=lambda: now[0])
    assert tracker.stage(Stage.DENOISING) == TaskProgress.starting(Stage.DENOISING)
    assert tracker.mean_step_seconds is None
    now[0] = 1.0
    assert tracker.step(1, 2) == TaskProgress.denoising(1, 2, mean_step=1.0)
    now[0] = 4.0
    assert tracker.step(2, 2) == TaskProgress.starting(Stage.DECODING)
    assert tracker.step_times == [1.0, 3.0]
    assert tracker.mean_step_seconds == 2.0


def test_the_eta_goes_by_the_recent_steps_not_the_slow_first_one() -> None:
    now = [0.0]
    tracker = ProgressTracker(clock=lambda: now[0])
    tracker.stage(Stage.DENOISING)
    times = [120.0, 2.0, 2.0, 4.0, 2.0, 2.0, 2.0, 2.0, 2.0]  # a warm-up step, then the rate
    for done, seconds in enumerate(times, start=1):
        now[0] += seconds
        report = tracker.step(done, 50)
        if done == 1:  # only the first step is known: it is all there is to go by
            assert (report.step_seconds, report.eta_seconds) == (120.0, 120.0 * 49)
    # the last 5 steps (2, 2, 2, 2, 2): 41 steps left at 2 s
    assert (report.step_seconds, report.eta_seconds) == (2.0, 82.0)
    assert tracker.recent_step_seconds == 2.0
    assert tracker.mean_step_seconds == sum(times) / len(times)  # what the run cost
    tracker.step(50, 50)


def test_the_recent_step_time_leaves_the_first_step_out_once_a_later_one_is_known() -> None:
    now = [0.0]
    tracker = ProgressTracker(clock=lambda: now[0])
    tracker.stage(Stage.DENOISING)
    for done, seconds in enumerate([30.0, 1.0, 3.0], start=1):
        now[0] += seconds
        tracker.step(done, 10)
    assert tracker.recent_step_seconds == 2.0  # (1 + 3) / 2
