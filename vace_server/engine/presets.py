"""Speed presets (`VACE_PRESET`): the steps, guidance, flow shift and scheduler a worker runs,
and whether the step-distill LoRA is fused (docs/presets.md has the trade-offs and sources).

- `quality`: the reference settings (50 steps, guidance 5, the model's shift, UniPC), today's
  default.
- `balanced`: the base weights with UniPC at 20 steps and guidance 5 (UniPC is built for few
  steps); 40 % of `quality`'s transformer passes. Our choice, quality with real weights not
  measured.
- `fast`: the lightx2v step/CFG-distill LoRA fused, with the settings its authors publish for
  it (LightX2V `configs/distill/wan21/wan_t2v_distill_lora_4step_cfg.json`): 4 steps at
  timesteps 1000/750/500/250 before a shift of 5, no CFG (guidance 1: diffusers then skips the
  unconditional pass), and their `WanStepDistillScheduler` step (predict x0, re-noise to the
  next sigma), which is diffusers' `FlowMatchEulerDiscreteScheduler(stochastic_sampling=True)`.

Explicit `VACE_NUM_INFERENCE_STEPS` / `VACE_GUIDANCE_SCALE` / `VACE_FLOW_SHIFT` still win.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from diffusers.schedulers.scheduling_flow_match_euler_discrete import (
    FlowMatchEulerDiscreteScheduler,
)

from vace_server.settings import EngineSettings

from .loras import LoraFile, apply_loras

__all__ = [
    "PRESETS",
    "DistillEulerScheduler",
    "Preset",
    "PresetName",
    "ResolvedPreset",
    "apply_preset",
    "resolve_preset",
    "use_preset_scheduler",
]

PresetName = Literal["quality", "balanced", "fast"]
SchedulerKind = Literal["model", "distill_euler"]


@dataclass(frozen=True)
class Preset:
    """One preset's values; None = the model's own default (50 steps / 2 for tiny, its shift)."""

    name: PresetName
    steps: int | None
    guidance_scale: float
    flow_shift: float | None
    scheduler: SchedulerKind  # "model": the checkpoint's own (UniPC for the Wan checkpoints)
    distill_lora: bool  # fuses VACE_DISTILL_LORA at load


PRESETS: dict[str, Preset] = {
    "quality": Preset("quality", None, 5.0, None, "model", False),
    "balanced": Preset("balanced", 20, 5.0, None, "model", False),
    # LightX2V: infer_steps 4, sample_shift 5, enable_cfg false, LoRA strength 1.0.
    "fast": Preset("fast", 4, 1.0, 5.0, "distill_euler", True),
}


@dataclass(frozen=True)
class ResolvedPreset:
    """What a worker runs: the preset's values with the explicit settings applied over them.
    `default_*` are the preset's own for this model (what a task recorded as None runs with)."""

    name: PresetName
    steps: int
    guidance_scale: float
    flow_shift: float
    scheduler: SchedulerKind
    distill_lora: bool
    default_steps: int
    default_guidance_scale: float
    default_flow_shift: float


def resolve_preset(
    engine: EngineSettings, *, model_steps: int, model_shift: float
) -> ResolvedPreset:
    """The preset named by `engine.preset` for a model whose own defaults are `model_steps`
    and `model_shift`, with `engine`'s explicit steps / guidance / shift winning.

    Raises: KeyError for a name settings would have refused (unvalidated settings)."""
    preset = PRESETS[engine.preset]
    steps = preset.steps if preset.steps is not None else model_steps
    shift = preset.flow_shift if preset.flow_shift is not None else model_shift
    return ResolvedPreset(
        name=preset.name,
        steps=engine.num_inference_steps or steps,
        guidance_scale=(
            preset.guidance_scale if engine.guidance_scale is None else engine.guidance_scale
        ),
        flow_shift=shift if engine.flow_shift is None else engine.flow_shift,
        scheduler=preset.scheduler,
        distill_lora=preset.distill_lora,
        default_steps=steps,
        default_guidance_scale=preset.guidance_scale,
        default_flow_shift=shift,
    )


class DistillEulerScheduler(FlowMatchEulerDiscreteScheduler):
    """diffusers' flow-matching Euler scheduler, stochastic (x0 then re-noise, as LightX2V's
    distill scheduler steps), whose N-step grid is LightX2V's: timesteps 1000 * (1 - i/N)
    before the shift (1000/750/500/250 for 4). The pipeline calls `set_timesteps(N)` with no
    sigmas, and the parent's own N-point grid would end near 0 instead, so we hand it ours."""

    def set_timesteps(
        self,
        num_inference_steps: int | None = None,
        device: Any = None,
        sigmas: list[float] | None = None,
        mu: float | None = None,
        timesteps: list[float] | None = None,
    ) -> None:
        if sigmas is None and timesteps is None and num_inference_steps:
            sigmas = np.linspace(1.0, 0.0, num_inference_steps + 1)[:-1].tolist()
        super().set_timesteps(num_inference_steps, device, sigmas, mu, timesteps)


def use_preset_scheduler(pipe: Any, preset: ResolvedPreset) -> None:
    """Puts the preset's scheduler on `pipe` at the preset's shift ("model" keeps the
    checkpoint's class; the loader applies the shift to it). Side effects: replaces
    `pipe.scheduler` for `distill_euler`."""
    if preset.scheduler == "distill_euler":
        config = pipe.scheduler.config
        pipe.scheduler = DistillEulerScheduler(
            num_train_timesteps=int(config.get("num_train_timesteps", 1000)),
            shift=preset.flow_shift,
            stochastic_sampling=True,
        )


def apply_preset(pipe: Any, preset: ResolvedPreset, loras: list[LoraFile]) -> None:
    """What a preset changes in the loaded pipeline, once per worker: the LoRAs fused (the
    distill LoRA among them when the preset uses one: `loras.configured_loras`), then its
    scheduler. Raises: loras.LoraError. Side effects: transformer weights, `pipe.scheduler`."""
    apply_loras(pipe, loras)
    use_preset_scheduler(pipe, preset)
