"""One benchmark row: a random-weight architecture loaded through the server's own loader with
flat settings overrides, one generation through `engine.runner.generate`, timed per stage.

The stages are timed by wrapping the pipeline's own methods on the instance (`encode_prompt`,
`vae.encode`, `prepare_latents`, `vae.decode`) and by the step callback; on CUDA every stamp
synchronises first, so a stage's time is its GPU work, not its launch. A run may stop after
fewer denoising steps than the preset's (`steps_run` < `steps_full`): the video time is then
projected as first step + (steps_full - 1) x the median later step, and the row says so.
"""

from __future__ import annotations

import dataclasses
import itertools
import re
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from PIL import Image
from pydantic import ValidationError

from vace_server.engine import loader, runner
from vace_server.model_inputs import VaceInputs
from vace_server.settings import GROUP_OF, Settings, describe_invalid

from .gpu_arch import ARCHS, Arch, build_pipeline
from .gpu_flops import forward_flops

__all__ = [
    "PEAK_BF16_TFLOPS",
    "BenchError",
    "parse_overrides",
    "peak_tflops",
    "run_row",
    "unknown_settings",
]

# Dense bf16 tensor-core peaks (no sparsity) from the vendors' data sheets, matched in order
# against torch's device name. Unknown GPUs: pass --peak-tflops.
PEAK_BF16_TFLOPS: tuple[tuple[str, float], ...] = (
    ("H200", 989.4),
    ("H100 PCIe", 756.0),
    ("H100", 989.4),  # SXM ("NVIDIA H100 80GB HBM3")
    ("A100", 312.0),
    ("L40S", 362.05),
    ("RTX 4090", 165.2),  # with float32 accumulation, which PyTorch's bf16 GEMMs use
)
PROMPT = "a red cat walks on the street in the light"
_OVERRIDE = re.compile(r"^VACE_([A-Z0-9_]+)=(.*)$", re.DOTALL)


class BenchError(RuntimeError):
    """A row that cannot run as asked (unknown or invalid setting, unknown model)."""


def parse_overrides(pairs: list[str]) -> dict[str, str]:
    """`["VACE_PRESET=fast"]` -> `{"preset": "fast"}`, refusing any name this build's Settings
    does not have (a setting another branch adds is not silently ignored)."""
    found: dict[str, str] = {}
    for pair in pairs:
        match = _OVERRIDE.match(pair.strip())
        if match is None:
            raise BenchError(f"--set {pair!r}: want VACE_NAME=value (e.g. VACE_PRESET=fast)")
        field = match.group(1).lower()
        if field not in GROUP_OF:
            raise BenchError(
                f"--set {pair!r}: VACE_{match.group(1)} is not a setting of this build "
                "(vace_server/settings/groups.py has no such field), so the row cannot run."
            )
        found[field] = match.group(2)
    return found


def unknown_settings(pairs: list[str]) -> list[str]:
    """The `VACE_*` names in `pairs` this build does not know (for the plan and the matrix)."""
    names = [p.partition("=")[0].strip() for p in pairs]
    return [n for n in names if n.removeprefix("VACE_").lower() not in GROUP_OF]


def peak_tflops(device_name: str, override: float | None) -> float | None:
    if override is not None:
        return override
    for key, value in PEAK_BF16_TFLOPS:
        if key in device_name:
            return value
    return None


def bench_settings(arch: Arch, overrides: dict[str, str]) -> Settings:
    """Settings for the row: the arch's size and frame count, then the overrides (which win)."""
    values: dict[str, Any] = {
        "model": f"random:{arch.key}",
        "generation_area": arch.width * arch.height,
        "num_frames": arch.num_frames,
        **overrides,
    }
    try:
        return Settings(**values)
    except ValidationError as exc:
        raise BenchError(f"invalid settings: {describe_invalid(exc)}") from None


class _Clock:
    """Stage stamps; `sync` makes a stamp wait for the GPU's queued work."""

    def __init__(self, device: str) -> None:
        cuda = device.startswith("cuda")
        self.sync: Callable[[], None] = torch.cuda.synchronize if cuda else (lambda: None)
        self.totals: dict[str, float] = {}
        self.denoise_start: float | None = None
        self.step_ends: list[float] = []
        self.forwards = 0

    def now(self) -> float:
        self.sync()
        return time.perf_counter()

    def wrap(self, stage: str, method: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            start = self.now()
            try:
                return method(*args, **kwargs)
            finally:
                self.totals[stage] = self.totals.get(stage, 0.0) + self.now() - start

        return timed


def _instrument(pipe: Any, clock: _Clock) -> None:
    pipe.encode_prompt = clock.wrap("text_encode", pipe.encode_prompt)
    pipe.vae.encode = clock.wrap("vae_encode", pipe.vae.encode)
    pipe.vae.decode = clock.wrap("vae_decode", pipe.vae.decode)
    prepare = pipe.prepare_latents

    def prepare_latents(*args: Any, **kwargs: Any) -> Any:
        out = prepare(*args, **kwargs)
        clock.denoise_start = clock.now()  # the last thing before the first step
        return out

    pipe.prepare_latents = prepare_latents

    def count(*_: Any) -> None:
        clock.forwards += 1

    for name in ("transformer", "transformer_2"):
        module = getattr(pipe, name, None)
        if module is not None:
            module.register_forward_pre_hook(count)


def _inputs(arch: Arch) -> VaceInputs:
    """A video-repainting shaped input: a gradient video and an all-white (repaint) mask."""
    ramp = np.linspace(0, 255, arch.width, dtype=np.float32)
    frames, masks = [], []
    for k in range(arch.num_frames):
        row = ((ramp + 7 * k) % 256).astype(np.uint8)
        pixels = np.broadcast_to(row[None, :, None], (arch.height, arch.width, 3))
        frames.append(Image.fromarray(np.ascontiguousarray(pixels)))
        masks.append(Image.new("L", (arch.width, arch.height), 255))
    return VaceInputs(
        width=arch.width,
        height=arch.height,
        num_frames=arch.num_frames,
        output_size=(arch.width, arch.height),
        output_seconds=arch.num_frames / 16,
        video=frames,
        mask=masks,
    )


def _device_name(device: str) -> str:
    if device.startswith("cuda"):
        return str(torch.cuda.get_device_name(torch.device(device)))
    return f"CPU ({torch.get_num_threads()} threads)"


def _load(arch: Arch, settings: Settings) -> tuple[loader.LoadedModel, float]:
    """The server's loader with the random-weight builder; returns the model and the seconds
    it took (build, placement and whatever the loader's settings add, e.g. a compile warm-up)."""
    start = time.perf_counter()
    try:
        model = loader.load_model(settings, build=lambda dev, dt: build_pipeline(arch, dev, dt))
    except loader.ModelLoadError as exc:
        raise BenchError(str(exc)) from None
    _Clock(model.device).now()  # the GPU's queued work belongs to the load
    return model, time.perf_counter() - start


def run_row(
    model_key: str,
    pairs: list[str],
    *,
    max_steps: int,
    peak: float | None = None,
    warmup: bool = False,
) -> dict[str, Any]:
    """Loads `model_key` with random weights and the `pairs` overrides, generates once
    (after an untimed one-step generation when `warmup`).

    Returns: the row's measurements (JSON-ready). Raises: BenchError for an unknown model or
    setting, or settings the loader refuses; anything else the run raises.
    """
    if model_key not in ARCHS:
        raise BenchError(f"unknown model {model_key!r}; choose from {', '.join(ARCHS)}")
    arch = ARCHS[model_key]
    settings = bench_settings(arch, parse_overrides(pairs))
    model, load_s = _load(arch, settings)
    clock = _Clock(model.device)
    cuda = model.device.startswith("cuda")
    steps_full = model.num_inference_steps
    steps_run = min(steps_full, max_steps)
    timed = dataclasses.replace(model, num_inference_steps=steps_run)
    inputs = _inputs(arch)
    if warmup:  # first-call costs (cuBLAS/cuDNN set-up, allocator growth) out of the timing
        runner.generate(
            dataclasses.replace(model, num_inference_steps=1), inputs, prompt=PROMPT,
            negative_prompt=settings.engine.negative_prompt, seed=0,
        )  # fmt: skip
    _instrument(model.pipe, clock)
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    weights_gib = torch.cuda.memory_allocated() / 2**30 if cuda else None

    def on_step(done: int, total: int) -> None:
        if total != steps_run:  # the runner took its steps from elsewhere: stop, don't run 50
            raise BenchError(f"the runner ran {total} steps, not the bench's {steps_run}")
        clock.step_ends.append(clock.now())

    began = clock.now()
    runner.generate(
        timed, inputs, prompt=PROMPT, negative_prompt=settings.engine.negative_prompt,
        seed=0, on_step=on_step,
    )  # fmt: skip
    total_s = clock.now() - began
    peak_gib = torch.cuda.max_memory_allocated() / 2**30 if cuda else None
    name = _device_name(model.device)
    peak = peak_tflops(name, peak) if cuda else peak
    return _report(arch, pairs, model, clock, steps_full, steps_run, total_s, peak) | {
        "warmup": warmup,
        "load_s": load_s,
        "weights_gib": weights_gib,
        "peak_gib": peak_gib,
        "device": name,
    }


def _report(
    arch: Arch,
    pairs: list[str],
    model: loader.LoadedModel,
    clock: _Clock,
    steps_full: int,
    steps_run: int,
    total_s: float,
    peak: float | None,
) -> dict[str, Any]:
    assert clock.denoise_start is not None and len(clock.step_ends) == steps_run
    marks = [clock.denoise_start, *clock.step_ends]
    steps = [b - a for a, b in itertools.pairwise(marks)]
    steady = statistics.median(steps[1:]) if len(steps) > 1 else steps[0]
    denoise_full = steps[0] + (steps_full - 1) * steady
    stages = {k: clock.totals.get(k, 0.0) for k in ("text_encode", "vae_encode", "vae_decode")}
    other = total_s - sum(stages.values()) - sum(steps)  # preprocessing, postprocessing
    forwards_per_step = clock.forwards / steps_run
    flops_step = forwards_per_step * forward_flops(
        arch.transformer, arch.width, arch.height, arch.num_frames, model.max_sequence_length
    )
    tflops = flops_step / steady / 1e12
    return {
        "model": arch.key,
        "settings": list(pairs),
        "size": f"{arch.width}x{arch.height}x{arch.num_frames}",
        "dtype": str(model.dtype).removeprefix("torch."),
        "steps_full": steps_full,
        "steps_run": steps_run,
        "projected": steps_run < steps_full,
        "guidance": model.guidance_scale,
        "forwards_per_step": forwards_per_step,
        **{f"{k}_s": v for k, v in stages.items()},
        "first_step_s": steps[0],
        "step_s": steady,
        "denoise_s": denoise_full,
        "other_s": other,
        "video_s": sum(stages.values()) + denoise_full + other,
        "tflops_per_step": flops_step / 1e12,
        "achieved_tflops": tflops,
        "peak_tflops": peak,
        "pct_of_peak": None if peak is None else 100.0 * tflops / peak,
        "torch": torch.__version__,
        "date": time.strftime("%Y-%m-%d", time.gmtime()),
    }
