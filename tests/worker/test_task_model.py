"""The model as a task needs it: the engine settings recorded in its spec win; the weights
are shared and the scheduler follows the task's shift."""

from __future__ import annotations

from pathlib import Path

from vace_server.engine.loader import load_model
from vace_server.settings import Settings
from vace_server.tasks.spec import EngineParams
from vace_server.worker.task_model import model_for_task


def test_recorded_settings_win_and_the_scheduler_follows_the_shift() -> None:
    model = load_model(Settings(model="tiny", num_frames=5))
    assert model_for_task(model, None) is model
    same = EngineParams(num_frames=5, fps=16, guidance_scale=model.guidance_scale)
    assert model_for_task(model, same) is model  # None fields: the model's own defaults
    other = EngineParams(
        num_frames=9, fps=8, guidance_scale=2.0, num_inference_steps=4, flow_shift=7.0
    )
    task = model_for_task(model, other)
    assert task.pipe is model.pipe  # no second copy of the weights
    assert (task.profile.num_frames, task.profile.fps, task.num_inference_steps) == (9, 8, 4)
    assert (task.guidance_scale, task.flow_shift) == (2.0, 7.0)
    assert model.pipe.scheduler.config.flow_shift == 7.0
    assert model_for_task(model, None) is model  # the next task, recorded before: back
    assert model.pipe.scheduler.config.flow_shift == model.flow_shift


def test_values_a_task_left_unset_follow_the_loaded_preset(tiny_lora: Path) -> None:
    fast = load_model(Settings(model="tiny", num_frames=5, preset="fast", distill_lora=tiny_lora))
    unset = EngineParams(num_frames=5, fps=16, guidance_scale=None, preset="fast")
    assert model_for_task(fast, unset) is fast
    assert (fast.num_inference_steps, fast.guidance_scale, fast.flow_shift) == (4, 1.0, 5.0)
    # A row accepted under another preset runs under the weights this worker has fused; an
    # older row's explicit guidance still wins.
    older = EngineParams(num_frames=5, fps=16, guidance_scale=5.0, preset="quality")
    task = model_for_task(fast, older)
    assert (task.num_inference_steps, task.guidance_scale, task.flow_shift) == (4, 5.0, 5.0)
    assert task.preset is fast.preset
