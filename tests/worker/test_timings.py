"""Stage timings: the accumulator, and a real run on the tiny model recording every stage in
the task's `effective` record."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from tests.worker.test_loop import _loop, _submit, model  # noqa: F401  (the fixture)
from vace_server.engine.loader import LoadedModel
from vace_server.tasks.store import TaskStore
from vace_server.worker.timings import STAGES, StageTimings, overhead_ms


def test_stages_accumulate_in_order_and_unknown_ones_are_refused() -> None:
    now = [0.0]
    timings = StageTimings(clock=lambda: now[0])
    with timings.timed("store"):
        now[0] += 0.25
    timings.add("fetch", 0.001)
    timings.add("fetch", 0.002)
    timings.add("denoise", -1.0)  # a clock step backwards counts as nothing
    assert timings.to_json() == {"fetch": 3.0, "denoise": 0.0, "store": 250.0}
    assert list(timings.to_json()) == [s for s in STAGES if s in timings.to_json()]
    with pytest.raises(ValueError, match="unknown stage 'upload'"):
        timings.add("upload", 1.0)


def test_a_stage_that_raises_is_still_timed() -> None:
    timings = StageTimings()
    with pytest.raises(RuntimeError), timings.timed("fetch"):
        raise RuntimeError("download failed")
    assert "fetch" in timings.to_json()


def test_overhead_is_everything_but_the_pipeline_call() -> None:
    stage_ms = {"fetch": 10.0, "prompt_encode": 5.0, "denoise": 900.0, "vae_decode": 50.0}
    assert overhead_ms({**stage_ms, "encode_video": 20.0, "store": 1.0}) == 31.0


def test_a_run_on_the_tiny_model_records_every_stage(
    store: TaskStore,
    model: LoadedModel,  # noqa: F811
    tmp_path: Path,
    one_torch_thread: None,
) -> None:
    task_id = _submit(store)
    # Without the worker's prompt cache (shared by this module's runs: a cached prompt is not
    # encoded again, so it would have no prompt_encode stage), the text encoder runs and is timed.
    uncached = dataclasses.replace(model, prompts=None)
    assert _loop(store, uncached, tmp_path).run_once()
    task = store.get(task_id)
    assert task is not None and task.effective is not None
    stage_ms = task.effective["stage_ms"]
    # An image_reference task: its image is fetched and VAE-encoded as a reference.
    assert list(stage_ms) == list(STAGES)
    assert all(isinstance(ms, float) and ms >= 0 for ms in stage_ms.values())
    assert stage_ms["denoise"] > 0
