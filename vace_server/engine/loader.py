"""Loading `WanVACEPipeline` once per worker: the tiny offline model, a local folder or a hub id.

`settings.engine.model` resolution:

1. `auto`  -> `Wan-AI/Wan2.1-VACE-1.3B-diffusers` when CUDA is available, else `tiny` with a
   loud warning (exposed as `LoadedModel.warning`, shown by /health).
2. `tiny`  -> the randomly initialised test pipeline (engine/tiny.py), built in memory;
   `tiny-a14b` the same laid out as Wan2.2-VACE-Fun-A14B (two transformers, a boundary).
3. an existing folder -> `WanVACEPipeline.from_pretrained(folder)` (diffusers layout).
4. `org/name` -> the same from the Hugging Face Hub (downloaded when online, else the cache).
5. anything else, or any load failure -> `ModelLoadError` saying what was tried and how to fix it.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from diffusers import AutoencoderKLWan, WanVACEPipeline

from vace_server.model_inputs import ModelProfile
from vace_server.settings import Settings

from .loras import LoraError, LoraFile, configured_loras
from .presets import PRESETS, ResolvedPreset, apply_preset, resolve_preset
from .prompt_cache import PromptCache, build_prompt_cache
from .speedups import apply_speedups
from .tiny import TINY_A14B, TINY_FLOW_SHIFT, TINY_MAX_SEQUENCE_LENGTH, build_tiny_pipeline

__all__ = [
    "DEFAULT_HUB_MODEL",
    "LoadedModel",
    "ModelKind",
    "ModelLoadError",
    "Pipeline",
    "PipelineBuilder",
    "load_model",
]

logger = logging.getLogger(__name__)

ModelKind = Literal["tiny", "local", "hub"]

DEFAULT_HUB_MODEL = "Wan-AI/Wan2.1-VACE-1.3B-diffusers"

# Per-model defaults, used when the matching setting is None.
AREA_1_3B = 832 * 480  # the 1.3B model's native 480p budget (docs/model-inputs.md §3)
AREA_14B = 1280 * 720  # the 14B model's native 720p budget
AREA_TINY = 112 * 64  # 7168 px: an 81-frame tiny run takes about a second on CPU
STEPS_REAL = 50  # Wan2.1 generate.py, VACE inference and diffusers all use 50
STEPS_TINY = 2  # random weights: only the code path matters
# Shift 16 is what the VACE authors' own inference (Wan2.1 generate.py for vace, the VACE
# scripts and Gradio demos, LightX2V's port) uses for both sizes; the converted diffusers
# checkpoints ship 3.0. We emulate the hosted service built by the same team, so we follow
# the reference implementation. The quality difference with real weights is unmeasured:
# VACE_FLOW_SHIFT=3 restores the diffusers value.
FLOW_SHIFT_REAL = 16.0
MAX_SEQUENCE_LENGTH_REAL = 512  # UMT5 text_len in Wan2.1

_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")
_DTYPES = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "float": torch.float32,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
    "float16": torch.float16,
    "fp16": torch.float16,
    "half": torch.float16,
}


# A diffusers `WanVACEPipeline`. Typed Any: mypy resolves diffusers' lazy, availability-gated
# exports to stubs without the pipeline's attributes.
Pipeline = Any
# Builds a pipeline for (device, dtype): bench/gpu.py's real-size random-weight models.
PipelineBuilder = Callable[[str, torch.dtype], Pipeline]


class ModelLoadError(RuntimeError):
    """The configured model could not be loaded; the message says what was tried and the fix."""


@dataclass
class LoadedModel:
    """A ready pipeline plus the effective generation defaults for it."""

    pipe: Pipeline = field(repr=False)  # a WanVACEPipeline
    name: str  # "tiny", a folder path or a hub id
    kind: ModelKind
    device: str
    dtype: torch.dtype
    profile: ModelProfile
    num_inference_steps: int
    guidance_scale: float
    flow_shift: float
    warning: str | None = None
    max_sequence_length: int = MAX_SEQUENCE_LENGTH_REAL
    preset: ResolvedPreset | None = None  # None: built without one (tests' fakes)
    prompts: PromptCache | None = None  # None: VACE_PROMPT_CACHE_SIZE=0


def load_model(settings: Settings, *, build: PipelineBuilder | None = None) -> LoadedModel:
    """Resolves `settings.engine.model` and loads the pipeline onto the configured device.
    `build`, when given, makes the pipeline instead (on the resolved device and dtype, like a
    loaded checkpoint: VAE float32); the name is then only recorded, and the model is
    treated as a real one (per-model defaults by its layer count).

    Returns: a LoadedModel with per-model defaults filled in.
    Raises: ModelLoadError for bad engine settings, a missing folder/repo, no network
    access to the Hub, or a folder that is not a diffusers `WanVACEPipeline`.
    Side effects: may download weights into the Hugging Face cache (hub ids, when online).
    """
    _check_settings(settings)  # before any weights are read
    device = _resolve_device(settings.engine.device)
    dtype = _resolve_dtype(settings.engine.dtype, device)
    loras = _configured_loras(settings)  # missing files fail before any weights are read

    name, warning = _resolve_name(settings.engine.model.strip())
    kind: ModelKind
    if build is not None:
        kind, pipe = "local", build(device, dtype)
    elif name in ("tiny", TINY_A14B):
        kind, pipe = "tiny", build_tiny_pipeline(two_stage=name == TINY_A14B)
    elif Path(name).expanduser().is_dir():
        kind, pipe = "local", _load_folder(Path(name).expanduser(), dtype)
    elif _HUB_ID.match(name):
        kind, pipe = "hub", _load_hub(name, dtype)
    else:
        raise ModelLoadError(
            f"VACE_MODEL={name!r} is neither 'auto', 'tiny', 'tiny-a14b', an existing folder "
            f"nor a Hugging Face repo id like {DEFAULT_HUB_MODEL!r}. Point it at a downloaded "
            "diffusers folder, e.g. `huggingface-cli download "
            f"{DEFAULT_HUB_MODEL} --local-dir /models/vace-1.3b` then VACE_MODEL=/models/vace-1.3b."
        )

    if kind == "tiny":
        default_area, default_steps, default_shift = AREA_TINY, STEPS_TINY, TINY_FLOW_SHIFT
    else:
        default_area, default_steps, default_shift = (
            _real_area(pipe, name),
            STEPS_REAL,
            FLOW_SHIFT_REAL,
        )
    preset = _apply_preset(pipe, settings, loras, steps=default_steps, shift=default_shift)
    flow_shift = preset.flow_shift
    _apply_flow_shift(pipe, flow_shift)
    pipe.set_progress_bar_config(disable=True)

    area = settings.engine.generation_area or default_area
    steps = preset.steps
    _check_schedule(pipe, steps, flow_shift)
    loaded = LoadedModel(
        pipe=pipe,
        name=name,
        kind=kind,
        device=device,
        dtype=dtype,
        profile=ModelProfile(
            generation_area=area, num_frames=settings.engine.num_frames, fps=settings.engine.fps
        ),
        num_inference_steps=steps,
        guidance_scale=preset.guidance_scale,
        flow_shift=flow_shift,
        warning=warning,
        max_sequence_length=TINY_MAX_SEQUENCE_LENGTH
        if kind == "tiny"
        else MAX_SEQUENCE_LENGTH_REAL,
        preset=preset,
    )
    apply_speedups(loaded, settings.engine)  # placement, offload, cache, compile + warm-up
    # After placement: the cache encodes on the pipeline's execution device, and its tensors
    # stay there (encoded before `pipe.to("cuda")`, they would sit on the CPU).
    loaded.prompts = build_prompt_cache(
        pipe,
        model=name,
        size=settings.engine.prompt_cache_size,
        max_sequence_length=loaded.max_sequence_length,
        default_negative=settings.engine.negative_prompt if preset.guidance_scale > 1 else None,
    )
    logger.info(
        "loaded model %s (%s) on %s/%s: preset=%s area=%d frames=%d steps=%d shift=%s cfg=%s",
        name, kind, device, str(dtype).removeprefix("torch."), preset.name, area,
        settings.engine.num_frames, loaded.num_inference_steps, flow_shift, preset.guidance_scale,
    )  # fmt: skip
    return loaded


# ------------------------------------------------------------------------------ resolution
def _check_schedule(pipe: Pipeline, steps: int, shift: float) -> None:
    """Refuses a step count the scheduler cannot walk: with many steps and a large shift the
    rounded timesteps repeat, and diffusers' multistep solvers then stop mid-run (UniPC fails
    an assertion). Raises ModelLoadError at start-up instead of failing every task."""
    scheduler = copy.deepcopy(pipe.scheduler)
    scheduler.set_timesteps(steps)
    timesteps = [float(t) for t in scheduler.timesteps]
    if len(set(timesteps)) != len(timesteps):
        raise ModelLoadError(
            f"VACE_NUM_INFERENCE_STEPS={steps} is more than this scheduler can take with "
            f"flow_shift={shift}: its timesteps repeat. Use fewer steps (a few hundred at most)."
        )


def _apply_preset(
    pipe: Pipeline, settings: Settings, loras: list[LoraFile], *, steps: int, shift: float
) -> ResolvedPreset:
    """VACE_PRESET for a model whose own defaults are `steps` and `shift`: LoRAs fused, the
    preset's scheduler set (engine/presets.py)."""
    preset = resolve_preset(settings.engine, model_steps=steps, model_shift=shift)
    try:
        apply_preset(pipe, preset, loras)
    except LoraError as exc:
        raise ModelLoadError(str(exc)) from exc
    return preset


def _configured_loras(settings: Settings) -> list[LoraFile]:
    preset = PRESETS.get(settings.engine.preset)
    if preset is None:  # settings refuse it at load; unvalidated settings meet it here
        raise ModelLoadError(
            f"VACE_PRESET={settings.engine.preset!r} is not one of {', '.join(PRESETS)}."
        )
    if preset.distill_lora and settings.engine.distill_lora is None:
        raise ModelLoadError(
            f"VACE_PRESET={preset.name} needs VACE_DISTILL_LORA=<file> (see docs/presets.md)."
        )
    try:
        return configured_loras(settings.engine, distill=preset.distill_lora)
    except LoraError as exc:
        raise ModelLoadError(str(exc)) from exc


def _check_settings(settings: Settings) -> None:
    # Settings refuse these at load; settings built unvalidated (model_construct) meet them here.
    engine = settings.engine
    if engine.num_frames < 1 or (engine.num_frames - 1) % 4:
        raise ModelLoadError(f"VACE_NUM_FRAMES={engine.num_frames} must be 4n+1 (e.g. 81).")
    if engine.generation_area is not None and engine.generation_area < 16 * 16:
        raise ModelLoadError(
            f"VACE_GENERATION_AREA={engine.generation_area} is smaller than one 16x16 cell."
        )
    if engine.num_inference_steps is not None and engine.num_inference_steps < 1:
        raise ModelLoadError(f"VACE_NUM_INFERENCE_STEPS={engine.num_inference_steps} must be >= 1.")
    if engine.fps < 1:
        raise ModelLoadError(f"VACE_FPS={engine.fps} must be >= 1.")


def _resolve_name(model: str) -> tuple[str, str | None]:
    if model.lower() in ("tiny", TINY_A14B):
        return model.lower(), None
    if model.lower() != "auto":
        return model, None
    if torch.cuda.is_available():
        return DEFAULT_HUB_MODEL, None
    warning = (
        "VACE_MODEL=auto found no CUDA GPU, so the server runs the TINY RANDOM test model: "
        "videos are noise, not real generations. Set VACE_MODEL to a downloaded "
        f"{DEFAULT_HUB_MODEL} folder on a GPU machine for real output (docs/gpu.md)."
    )
    logger.warning(warning)
    return "tiny", warning


def _resolve_device(device: str) -> str:
    device = device.strip().lower()
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ModelLoadError(
            f"VACE_DEVICE={device!r} but torch sees no CUDA device (torch {torch.__version__}). "
            "Install a CUDA build of torch, or use VACE_DEVICE=cpu / auto."
        )
    try:
        torch.device(device)
    except RuntimeError as exc:
        raise ModelLoadError(f"VACE_DEVICE={device!r} is not a torch device: {exc}") from exc
    return device


def _resolve_dtype(dtype: str, device: str) -> torch.dtype:
    key = dtype.strip().lower().removeprefix("torch.")
    if key == "auto":
        # bf16 halves memory on GPUs with no quality loss for Wan; CPUs run fp32 fastest.
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    if key not in _DTYPES:
        raise ModelLoadError(
            f"VACE_DTYPE={dtype!r} is not one of auto, float32, bfloat16, float16."
        )
    return _DTYPES[key]


# ------------------------------------------------------------------------------ loading
def _load_folder(folder: Path, dtype: torch.dtype) -> Pipeline:
    index = folder / "model_index.json"
    if not index.is_file():
        raise ModelLoadError(
            f"Folder {str(folder)!r} has no model_index.json, so it is not a diffusers pipeline. "
            f"Download the diffusers format (e.g. `huggingface-cli download {DEFAULT_HUB_MODEL} "
            f"--local-dir {folder}`), not the original Wan-AI/Wan2.1-VACE-1.3B layout."
        )
    try:
        class_name = json.loads(index.read_text()).get("_class_name")
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"Cannot read {index}: {exc}") from exc
    if class_name != "WanVACEPipeline":
        raise ModelLoadError(
            f"Folder {str(folder)!r} holds a {class_name!r}, not a WanVACEPipeline; use a "
            "Wan2.1 VACE diffusers checkpoint such as " + DEFAULT_HUB_MODEL + "."
        )
    try:
        return _from_pretrained(str(folder), dtype)
    except Exception as exc:
        raise ModelLoadError(
            f"Loading the diffusers folder {str(folder)!r} failed: {_describe(exc)}. "
            "Re-download it (files may be incomplete) or check that it is a Wan2.1 VACE model."
        ) from exc


def _load_hub(repo_id: str, dtype: torch.dtype) -> Pipeline:
    offline = _hub_offline()
    try:
        return _from_pretrained(repo_id, dtype, local_files_only=offline)
    except Exception as exc:
        how = (
            "offline mode is on (HF_HUB_OFFLINE) and it is not in the local Hugging Face cache"
            if offline
            else "downloading it from the Hugging Face Hub failed (no network, wrong id, or a "
            "gated repo)"
        )
        folder = "/models/" + repo_id.split("/")[-1]
        raise ModelLoadError(
            f"Could not load model {repo_id!r}: {how}. Tried WanVACEPipeline.from_pretrained"
            f"({repo_id!r}) -> {_describe(exc)}\n"
            f"Fix: on a machine with internet run `huggingface-cli download {repo_id} "
            f"--local-dir {folder}` (or `hf download ...`), copy the folder here and set "
            f"VACE_MODEL={folder}; or VACE_MODEL=tiny for the weightless test model."
        ) from exc


def _describe(exc: BaseException) -> str:
    """The error and, when it wraps one (diffusers turns network errors into OSError), its root."""
    text = f"{type(exc).__name__}: {str(exc).strip()[:300]}"
    root, seen = exc, {id(exc)}
    while (nxt := root.__cause__ or root.__context__) is not None and id(nxt) not in seen:
        root = nxt
        seen.add(id(root))
    if root is not exc:
        text += f" (caused by {type(root).__name__}: {str(root).strip()[:200]})"
    return text


def _hub_offline() -> bool:
    """huggingface_hub reads HF_HUB_OFFLINE once at import; also honour a later setting."""
    from huggingface_hub import constants

    env = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or ""
    return bool(constants.HF_HUB_OFFLINE) or env.strip().upper() in {"1", "ON", "YES", "TRUE"}


def _from_pretrained(source: str, dtype: torch.dtype, **kwargs: Any) -> Pipeline:
    # The Wan VAE is kept in float32 (diffusers docstring): bf16 decoding visibly degrades.
    vae = AutoencoderKLWan.from_pretrained(source, subfolder="vae", dtype=torch.float32, **kwargs)
    pipe = WanVACEPipeline.from_pretrained(source, vae=vae, dtype=dtype, **kwargs)
    assert isinstance(pipe, WanVACEPipeline)
    return pipe


# ------------------------------------------------------------------------------ defaults
def _real_area(pipe: Pipeline, name: str) -> int:
    """1.3B has 30 transformer layers, 14B has 40; fall back to the name, then to 480p."""
    layers = getattr(pipe.transformer.config, "num_layers", None)
    if layers == 40 or (layers != 30 and "14b" in name.lower()):
        return AREA_14B
    if layers != 30 and "1.3b" not in name.lower():
        logger.info("model %s: unknown size (%s layers); defaulting to the 480p area", name, layers)
    return AREA_1_3B


def _apply_flow_shift(pipe: Pipeline, shift: float) -> None:
    """Rebuild the scheduler from its own config with the new shift (the documented way)."""
    config = pipe.scheduler.config
    if "flow_shift" in config:  # UniPC / DPM++ with flow sigmas (the converted checkpoints)
        pipe.scheduler = type(pipe.scheduler).from_config(config, flow_shift=shift)
    elif "shift" in config:  # FlowMatchEulerDiscreteScheduler
        pipe.scheduler = type(pipe.scheduler).from_config(config, shift=shift)
    else:
        logger.warning(
            "scheduler %s has no shift parameter; flow_shift=%s ignored",
            type(pipe.scheduler).__name__,
            shift,
        )
