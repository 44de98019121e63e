"""The loaded model as one task needs it: the engine settings recorded in its spec (frames,
fps, steps, guidance, shift, area) win over the worker's current ones, so a retried task runs
as it was accepted. The weights are shared; only the scheduler is rebuilt when the shift
differs (one task runs at a time per worker)."""

from __future__ import annotations

import dataclasses
import logging

from vace_server.engine import loader
from vace_server.engine.loader import LoadedModel
from vace_server.engine.tiny import TINY_FLOW_SHIFT
from vace_server.model_inputs import ModelProfile
from vace_server.tasks.spec import EngineParams

log = logging.getLogger(__name__)


def default_steps(model: LoadedModel) -> int:
    """The loaded preset's steps for this model (what a task that recorded none runs)."""
    if model.preset is not None:
        return model.preset.default_steps
    return loader.STEPS_TINY if model.kind == "tiny" else loader.STEPS_REAL


def default_shift(model: LoadedModel) -> float:
    if model.preset is not None:
        return model.preset.default_flow_shift
    return TINY_FLOW_SHIFT if model.kind == "tiny" else loader.FLOW_SHIFT_REAL


def default_guidance(model: LoadedModel) -> float:
    if model.preset is not None:
        return model.preset.default_guidance_scale
    return model.guidance_scale


def default_area(model: LoadedModel) -> int:
    if model.kind == "tiny":
        return loader.AREA_TINY
    return loader._real_area(model.pipe, model.name)  # the loader's own per-size rule


def model_for_task(model: LoadedModel, engine: EngineParams | None) -> LoadedModel:
    """Returns `model` itself when the task has no recorded engine settings (older rows) or
    they match, else a copy carrying them. Side effects: sets the pipeline's scheduler to the
    shift the returned model has."""
    if engine is None:
        _use_shift(model, model.flow_shift)
        return model
    loaded = model.preset.name if model.preset is not None else None
    if engine.preset is not None and loaded is not None and engine.preset != loaded:
        # The preset is in the weights (a fused LoRA), so the worker's is what can run; the
        # task's effective record says which one did.
        log.warning(
            "task accepted under preset %s runs under this worker's preset %s",
            engine.preset,
            loaded,
        )
    steps = engine.num_inference_steps or default_steps(model)
    guidance = default_guidance(model) if engine.guidance_scale is None else engine.guidance_scale
    shift = default_shift(model) if engine.flow_shift is None else engine.flow_shift
    profile = ModelProfile(
        generation_area=engine.generation_area or default_area(model),
        num_frames=engine.num_frames,
        fps=engine.fps,
    )
    _use_shift(model, shift)
    wanted = (profile, steps, guidance, shift)
    if wanted == (model.profile, model.num_inference_steps, model.guidance_scale, model.flow_shift):
        return model
    return dataclasses.replace(
        model,
        profile=profile,
        num_inference_steps=steps,
        guidance_scale=guidance,
        flow_shift=shift,
    )


def _use_shift(model: LoadedModel, shift: float) -> None:
    config = model.pipe.scheduler.config
    current = config.get("flow_shift", config.get("shift"))
    if current is not None and float(current) != float(shift):
        loader._apply_flow_shift(model.pipe, shift)
