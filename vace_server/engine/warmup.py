"""VACE_COMPILE: `compile_repeated_blocks` on the denoiser(s), then warm-up generations at the
shapes tasks use, so torch.compile's tracing and code generation happen while the worker
starts, not in the first user's task.

torch.compile specialises on shapes: the first warm-up (landscape) compiles static graphs, the
second (portrait, a different sequence length) recompiles with dynamic shapes, which later
sizes usually reuse. Another frame count or an unusual size may still recompile once.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import TYPE_CHECKING

from vace_server.model_inputs import VaceInputs, fit_area

if TYPE_CHECKING:
    from vace_server.settings import EngineSettings

    from .loader import LoadedModel

__all__ = ["WARMUP_STEPS", "compile_and_warm_up", "warmup_inputs"]

logger = logging.getLogger(__name__)

# Two steps run both CFG passes and the scheduler's multistep path; more would only add time.
WARMUP_STEPS = 2


def warmup_inputs(model: LoadedModel) -> list[VaceInputs]:
    """Text-only inputs at the model's generation area: 16:9 landscape, then 9:16 portrait."""
    profile = model.profile
    area = profile.generation_area
    shapes = [fit_area(1280, 720, area), fit_area(720, 1280, area)]  # 16:9 and 9:16 videos
    shapes = list(dict.fromkeys(shapes))  # a square-only budget gives one shape
    seconds = profile.num_frames / profile.fps
    frames, inputs = profile.num_frames, []
    for w, h in shapes:
        made = VaceInputs(w, h, num_frames=frames, output_size=(w, h), output_seconds=seconds)
        inputs.append(made)
    return inputs


def compile_and_warm_up(model: LoadedModel, engine: EngineSettings) -> list[str]:
    """Compiles the repeated blocks of every denoiser and runs `warmup_inputs` through the
    task path (engine.runner.generate) at WARMUP_STEPS steps.

    Returns: the labels for what was applied. Raises: ModelLoadError when compiling or the
    warm-up fails (a compiler missing, an unsupported mode). Side effects: the warm-up runs."""
    from .loader import ModelLoadError
    from .runner import generate
    from .speedups import transformers_of

    mode = None if engine.compile_mode == "default" else engine.compile_mode
    started = time.monotonic()
    try:
        for module in transformers_of(model.pipe):
            module.compile_repeated_blocks(mode=mode, backend=engine.compile_backend)
        short = dataclasses.replace(model, num_inference_steps=WARMUP_STEPS)
        for inputs in warmup_inputs(model):
            generate(
                short, inputs, prompt="warm-up", negative_prompt=engine.negative_prompt, seed=0
            )
    except Exception as exc:
        raise ModelLoadError(
            f"VACE_COMPILE=1 (backend {engine.compile_backend}, mode {engine.compile_mode}): "
            f"compiling or the warm-up run failed: {type(exc).__name__}: {str(exc)[:300]}. "
            "Unset VACE_COMPILE, or install what the backend needs (inductor: a C++ compiler; "
            "on CUDA, triton)."
        ) from exc
    took = time.monotonic() - started
    logger.info("compiled the repeated blocks and warmed up in %.1f s", took)
    return [f"compile {engine.compile_backend} (warm-up {took:.1f} s)"]
