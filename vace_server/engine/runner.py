"""One generation: validated `VaceInputs` in, (T, H, W, 3) float frames out."""

from __future__ import annotations

import gc
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from PIL import Image

from vace_server.functions.base import VaceInputs

from .loader import LoadedModel

__all__ = ["StepCallback", "free_memory", "generate", "pipeline_references"]

StepCallback = Callable[[int, int], None]


def pipeline_references(inputs: VaceInputs) -> list[Image.Image] | None:
    """`inputs.reference_images` (VACE's order: first image = first latent frame) in the order
    diffusers' WanVACEPipeline needs for the same latent layout. Its `prepare_video_latents`
    prepends each reference in turn (`cat([ref, latent])`), so the last one passed ends up
    first; VACE's `vace_encode_frames` concatenates them in list order. Hence reversed."""
    if inputs.reference_images is None:
        return None
    return list(reversed(inputs.reference_images))


def generate(
    model: LoadedModel,
    inputs: VaceInputs,
    *,
    prompt: str,
    negative_prompt: str,
    seed: int,
    on_step: StepCallback | None = None,
) -> np.ndarray:
    """Runs the pipeline once.

    Returns: float32 array (num_frames, height, width, 3) in [0, 1] at the generation size
    (reference frames already cut off by the pipeline).
    Raises: ValueError from `inputs.validate()` before any model work when the inputs would
    run misaligned; whatever `on_step` raises (that is how a cancel aborts a run: diffusers'
    `_interrupt` would still decode); torch/diffusers errors unwrapped (the worker maps them).
    Side effects: `on_step(done, total)` after each denoising step, done = 1..total.
    """
    inputs.validate()
    pipe = model.pipe
    # A CPU generator draws the same noise on every device, so a seed means one video anywhere.
    generator = torch.Generator(device="cpu").manual_seed(seed)

    def step_end(
        pipeline: Any, step_index: int, timestep: Any, tensors: dict[str, Any]
    ) -> dict[str, Any]:
        if on_step is not None:
            total = getattr(pipeline, "num_timesteps", None) or model.num_inference_steps
            on_step(step_index + 1, int(total))
        return tensors

    with torch.inference_mode():
        output = pipe(
            prompt=prompt,
            negative_prompt=negative_prompt,
            video=inputs.video,
            mask=inputs.mask,
            reference_images=pipeline_references(inputs),
            conditioning_scale=inputs.conditioning_scale,
            height=inputs.height,
            width=inputs.width,
            num_frames=inputs.num_frames,
            num_inference_steps=model.num_inference_steps,
            guidance_scale=model.guidance_scale,
            generator=generator,
            output_type="np",
            callback_on_step_end=step_end,
            max_sequence_length=model.max_sequence_length,
        )
    frames = np.asarray(output.frames[0], dtype=np.float32)
    expected = (inputs.num_frames, inputs.height, inputs.width, 3)
    if frames.shape != expected:  # never hand a misshapen video to the encoder
        raise RuntimeError(f"pipeline returned frames of shape {frames.shape}, expected {expected}")
    return frames


def free_memory(model: LoadedModel) -> None:
    """Releases what an aborted run left behind (activations, cached GPU blocks)."""
    gc.collect()
    if str(model.device).startswith("cuda") and torch.cuda.is_available():
        torch.cuda.empty_cache()
