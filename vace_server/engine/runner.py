"""One generation: validated `VaceInputs` in, (T, H, W, 3) float frames out."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
from PIL import Image

from vace_server.model_inputs import VaceInputs

from .loader import LoadedModel
from .part_timer import PartRecorder, timed_parts
from .speedups import reset_cache_state

__all__ = ["StepCallback", "free_memory", "generate", "letterbox_reference", "pipeline_references"]

StepCallback = Callable[[int, int], None]


def letterbox_reference(image: Image.Image, width: int, height: int) -> Image.Image:
    """A reference fitted inside `width` x `height` and centred on white, computed as VACE's
    `prepare_source` does (to [-1, 1], bilinear `align_corners=False` to int(side * scale),
    pasted at ((H - h) // 2, (W - w) // 2) on a canvas of 1), then back to 8 bits.

    Done here because diffusers would first resize the image to multiples of 8 (Lanczos) and
    only then letterbox it; given a canvas of exactly the generation size, its own letterbox is
    the identity, so what reaches the model is VACE's canvas up to 8-bit rounding."""
    rgb = image.convert("RGB")
    if rgb.size == (width, height):
        return rgb
    pixels = torch.from_numpy(np.asarray(rgb).copy()).permute(2, 0, 1).float() / 127.5 - 1.0
    ref_h, ref_w = pixels.shape[-2:]
    scale = min(height / ref_h, width / ref_w)
    new_h, new_w = int(ref_h * scale), int(ref_w * scale)
    resized = torch.nn.functional.interpolate(
        pixels[None], size=(new_h, new_w), mode="bilinear", align_corners=False
    )[0]
    canvas = torch.ones((3, height, width))
    top, left = (height - new_h) // 2, (width - new_w) // 2
    canvas[:, top : top + new_h, left : left + new_w] = resized
    out = ((canvas + 1.0) * 127.5).round().clamp(0, 255).to(torch.uint8)
    return Image.fromarray(out.permute(1, 2, 0).numpy())


def pipeline_references(inputs: VaceInputs) -> list[Image.Image] | None:
    """`inputs.reference_images` (VACE's order: first image = first latent frame) as diffusers'
    WanVACEPipeline needs them for VACE's latent layout: each letterboxed onto white at the
    generation size (`letterbox_reference`), and reversed, because `prepare_video_latents`
    prepends each reference in turn (`cat([ref, latent])`, so the last one passed ends up
    first) where VACE's `vace_encode_frames` concatenates them in list order."""
    if inputs.reference_images is None:
        return None
    boxed = [letterbox_reference(r, inputs.width, inputs.height) for r in inputs.reference_images]
    return list(reversed(boxed))


def generate(
    model: LoadedModel,
    inputs: VaceInputs,
    *,
    prompt: str,
    negative_prompt: str,
    seed: int,
    on_step: StepCallback | None = None,
    on_part: PartRecorder | None = None,
) -> np.ndarray:
    """Runs the pipeline once.

    Returns: float32 array (num_frames, height, width, 3) in [0, 1] at the generation size
    (reference frames already cut off by the pipeline).
    Raises: ValueError from `inputs.validate()` before any model work when the inputs would
    run misaligned; whatever `on_step` raises (that is how a cancel aborts a run: diffusers'
    `_interrupt` would still decode); torch/diffusers errors unwrapped (the worker maps them).
    Side effects: `on_step(done, total)` after each denoising step, done = 1..total;
    `on_part(part, seconds)` after each text-encoder pass and VAE encode/decode call
    (`part_timer`).
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

    cfg = model.guidance_scale > 1  # diffusers' rule: at 1 the unconditional pass is skipped
    reset_cache_state(pipe)  # a cancelled run leaves cache state behind
    with (
        torch.inference_mode(),
        _seeded_global_rng(seed, model.device),
        timed_parts(pipe, str(model.device), on_part),
    ):
        output = pipe(
            **_prompt_arguments(model, prompt, negative_prompt if cfg else None),
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


def _prompt_arguments(
    model: LoadedModel, prompt: str, negative_prompt: str | None
) -> dict[str, Any]:
    """The prompts as the pipeline takes them: encoded through the worker's cache when it has
    one (`prompt_embeds`), else as text for the pipeline to encode. No negative without CFG."""
    if model.prompts is None:
        return {"prompt": prompt, "negative_prompt": negative_prompt}
    length = model.max_sequence_length
    return {
        "prompt_embeds": model.prompts.embeds(prompt, length),
        "negative_prompt_embeds": None
        if negative_prompt is None
        else model.prompts.embeds(negative_prompt, length),
    }


@contextlib.contextmanager
def _seeded_global_rng(seed: int, device: str) -> Iterator[None]:
    """The global RNG seeded from the task's seed for the run, and restored after: a
    stochastic scheduler (the fast preset's re-noising step) draws from it, since the pipeline
    does not hand its generator to `scheduler.step`. So a seed is still one video."""
    cuda = [torch.device(device).index or 0] if str(device).startswith("cuda") else []
    with torch.random.fork_rng(devices=cuda):
        torch.manual_seed(seed)
        yield


def free_memory(model: LoadedModel) -> None:
    """Releases what an aborted run left behind (activations, cached GPU blocks)."""
    gc.collect()
    if str(model.device).startswith("cuda") and torch.cuda.is_available():
        torch.cuda.empty_cache()
