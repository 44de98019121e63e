"""The acceleration switches of `settings.engine` (settings/speedups.py) applied to a loaded
`WanVACEPipeline`, all of them diffusers' or PyTorch's own features:

precision (the VAE in float32 unless VACE_VAE_DTYPE says otherwise), fp8 weight storage
(`enable_layerwise_casting`), the attention backend (`set_attention_backend`, checked against
the installed packages and the GPU first), a cache method (`enable_cache`), placement (model or
group offload, the text encoder on the CPU), VAE tiling/slicing, and `compile_repeated_blocks`
with a warm-up run (engine/warmup.py) so the compile happens before the first task.

Every problem is a `ModelLoadError` raised while the worker starts, never during a task.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, NoReturn

import torch

if TYPE_CHECKING:
    from vace_server.settings import EngineSettings

    from .loader import LoadedModel, Pipeline

__all__ = [
    "CPU_ATTENTION_BACKENDS",
    "apply_speedups",
    "attention_problem",
    "build_cache_config",
    "enable_offload",
    "reset_cache_state",
    "transformers_of",
]

logger = logging.getLogger(__name__)

# Backends that run on any device; every other one is a CUDA kernel.
CPU_ATTENTION_BACKENDS = frozenset({"native", "_native_math", "flex"})
# Lowest CUDA compute capability each kernel supports (the kernels' own READMEs: FlashAttention
# 2 and SageAttention need Ampere, FA3 and Sage's sm90 kernel Hopper, Sage's fp8 PV Ada).
_MIN_CAPABILITY = {
    "flash": (8, 0),
    "flash_varlen": (8, 0),
    "_flash_3": (9, 0),
    "_flash_varlen_3": (9, 0),
    "sage": (8, 0),
    "sage_varlen": (8, 0),
    "_sage_qk_int8_pv_fp16_cuda": (8, 0),
    "_sage_qk_int8_pv_fp16_triton": (8, 0),
    "_sage_qk_int8_pv_fp8_cuda": (8, 9),
    "_sage_qk_int8_pv_fp8_cuda_sm90": (9, 0),
}
# TaylorSeer's default patterns (`^blocks.*attn`) match no Wan module (they are `attn1`,
# `attn2`): name the attention and feed-forward layers of both block stacks.
_TAYLORSEER_MODULES = [r"(vace_)?blocks\.\d+\.(attn1|attn2|ffn)"]
_VAE_DTYPES = {"auto": torch.float32, "float32": torch.float32, "fp32": torch.float32}
_VAE_DTYPES |= {"float": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16}
_VAE_DTYPES |= {"float16": torch.float16, "fp16": torch.float16, "half": torch.float16}


def _fail(message: str) -> NoReturn:
    from .loader import ModelLoadError  # lazy: the loader imports this module

    raise ModelLoadError(message)


def apply_speedups(model: LoadedModel, engine: EngineSettings) -> tuple[str, ...]:
    """Applies every switch `engine` turns on to `model.pipe`, places it on `model.device`,
    and, with VACE_COMPILE, compiles and warms it up.

    Returns: what was applied, one short label each (also logged).
    Raises: ModelLoadError naming the setting when a switch cannot work here.
    Side effects: moves the pipeline's modules, registers diffusers hooks, runs warm-up
    generations (VACE_COMPILE only)."""
    pipe, applied = model.pipe, []
    applied += _precision(pipe, model, engine)
    applied += _layerwise_casting(pipe, model.dtype, engine.layerwise_casting)
    applied += _attention(pipe, engine.attention_backend, model.device)
    applied += _cache(pipe, model, engine)
    applied += _placement(pipe, model.device, engine)
    applied += _vae_memory(pipe, engine)
    if engine.compile:
        from .warmup import compile_and_warm_up  # lazy: warm-up runs the runner

        applied += compile_and_warm_up(model, engine)
    if applied:
        logger.info("speedups applied: %s", ", ".join(applied))
    return tuple(applied)


def transformers_of(pipe: Pipeline) -> list[Any]:
    """The pipeline's denoisers: `transformer`, and `transformer_2` for two-expert models."""
    found = [getattr(pipe, name, None) for name in ("transformer", "transformer_2")]
    return [module for module in found if module is not None]


def reset_cache_state(pipe: Pipeline) -> None:
    """Clears what a cache method carried over: diffusers resets it at the end of a completed
    call, but a run aborted mid-way (a cancel) would hand its residuals to the next task."""
    for module in transformers_of(pipe):
        if getattr(module, "is_cache_enabled", False):
            module._reset_stateful_cache()


# ------------------------------------------------------------------------------ precision
def _precision(pipe: Pipeline, model: LoadedModel, engine: EngineSettings) -> list[str]:
    if model.kind == "tiny" and model.dtype != torch.float32:
        # Built in fp32; convert like a loaded checkpoint would be (the VAE stays fp32).
        for module in [*transformers_of(pipe), pipe.text_encoder]:
            module.to(dtype=model.dtype)
    vae_dtype = _VAE_DTYPES[engine.vae_dtype.strip().lower().removeprefix("torch.")]
    if vae_dtype == torch.float32:
        return []
    pipe.vae.to(dtype=vae_dtype)
    return [f"vae {str(vae_dtype).removeprefix('torch.')}"]


def _layerwise_casting(pipe: Pipeline, compute: torch.dtype, storage_name: str) -> list[str]:
    if storage_name == "none":
        return []
    storage = getattr(torch, storage_name, None)
    if not isinstance(storage, torch.dtype):
        _fail(f"VACE_LAYERWISE_CASTING={storage_name}: torch {torch.__version__} has no such dtype")
    if compute == storage:
        _fail("VACE_LAYERWISE_CASTING needs VACE_DTYPE to be a compute dtype (bf16, fp16, fp32)")
    for module in transformers_of(pipe):
        # Weights are stored in fp8 and upcast per layer; diffusers keeps its precision-critical
        # layers (embeddings, norms: `_skip_layerwise_casting_patterns`) as they are.
        module.enable_layerwise_casting(storage_dtype=storage, compute_dtype=compute)
    return [f"layerwise casting {storage_name}"]


# ------------------------------------------------------------------------------ attention
def attention_problem(backend: str, device: str, capability: tuple[int, int] | None) -> str | None:
    """Why `backend` cannot run on `device` (CUDA compute `capability`, None off CUDA), or None."""
    if backend in CPU_ATTENTION_BACKENDS:
        return None
    if not device.startswith("cuda") or capability is None:
        return f"VACE_ATTENTION_BACKEND={backend} needs a CUDA GPU, and VACE_DEVICE is {device}"
    needed = _MIN_CAPABILITY.get(backend)
    if needed and capability < needed:
        return (
            f"VACE_ATTENTION_BACKEND={backend} needs a GPU of compute capability "
            f"{needed[0]}.{needed[1]} or newer; this one is {capability[0]}.{capability[1]}"
        )
    return None


def _attention(pipe: Pipeline, backend: str, device: str) -> list[str]:
    from diffusers.models.attention_dispatch import (
        AttentionBackendName,
        _check_attention_backend_requirements,
    )

    known = sorted(name.value for name in AttentionBackendName)
    if backend not in known:
        _fail(f"VACE_ATTENTION_BACKEND={backend} is not a diffusers backend: {', '.join(known)}")
    if backend == "native":
        return []
    try:  # the package first: "install flash-attn" is the more useful message
        _check_attention_backend_requirements(AttentionBackendName(backend))
    except RuntimeError as exc:
        _fail(f"VACE_ATTENTION_BACKEND={backend}: {exc}")
    on_cuda = device.startswith("cuda") and torch.cuda.is_available()
    capability = torch.cuda.get_device_capability(torch.device(device)) if on_cuda else None
    if problem := attention_problem(backend, device, capability):
        _fail(problem)
    try:  # the *_hub backends fetch their kernel from the Hugging Face Hub here
        for module in transformers_of(pipe):
            module.set_attention_backend(backend)
    except Exception as exc:
        _fail(f"VACE_ATTENTION_BACKEND={backend}: {type(exc).__name__}: {str(exc)[:300]}")
    return [f"attention {backend}"]


# ------------------------------------------------------------------------------ cache
def build_cache_config(pipe: Pipeline, engine: EngineSettings, guidance: float) -> Any:
    """The diffusers cache config for `engine.cache` (None for `none`), intervals defaulting to
    diffusers' own. Raises ModelLoadError for a method that would be wrong with these settings.
    (first_block, mag and faster are refused by the settings: see settings/speedups.py.)"""
    from diffusers import PyramidAttentionBroadcastConfig, TaylorSeerCacheConfig

    method = engine.cache
    if method == "taylorseer":
        return TaylorSeerCacheConfig(
            cache_interval=engine.cache_interval or 5, cache_identifiers=_TAYLORSEER_MODULES
        )
    if method == "pab":
        if guidance > 1.0:
            # PAB keeps one cache per attention layer, not per cache context: with CFG the
            # unconditional pass would reuse the conditional pass's attention.
            _fail(
                "VACE_CACHE=pab shares its attention cache between the conditional and "
                f"unconditional passes, so it needs guidance 1 (no CFG), not {guidance:g}"
            )
        return PyramidAttentionBroadcastConfig(
            spatial_attention_block_skip_range=engine.cache_interval or 2,
            spatial_attention_timestep_skip_range=(100, 800),
            current_timestep_callback=lambda: pipe.current_timestep,
        )
    return None


def _cache(pipe: Pipeline, model: LoadedModel, engine: EngineSettings) -> list[str]:
    if engine.cache == "none":
        return []
    for module in transformers_of(pipe):  # one config (one state) per denoiser
        module.enable_cache(build_cache_config(pipe, engine, model.guidance_scale))
    return [f"cache {engine.cache}"]


# ------------------------------------------------------------------------------ placement
def _placement(pipe: Pipeline, device: str, engine: EngineSettings) -> list[str]:
    offload = "model" if engine.model_cpu_offload and engine.offload == "none" else engine.offload
    text_on_cpu = engine.text_encoder_device == "cpu" and device != "cpu"
    if offload != "none" and device == "cpu":
        logger.warning("VACE_OFFLOAD=%s (VACE_MODEL_CPU_OFFLOAD) ignored: the model already "
                       "runs on the CPU", offload)  # fmt: skip
        offload = "none"
    applied = []
    if offload == "none":
        pipe.to(device)
    else:
        enable_offload(pipe, offload, device, engine.group_offload_type, keep_text=text_on_cpu)
        applied.append(f"offload {offload}")
    if text_on_cpu:
        # diffusers runs the encoder where its weights are and moves the embeddings to the
        # denoiser's device (WanVACEPipeline._get_t5_prompt_embeds).
        pipe.text_encoder.to("cpu")
        applied.append("text encoder on cpu")
    return applied


def enable_offload(
    pipe: Pipeline, mode: str, device: str, group_type: str, *, keep_text: bool = False
) -> None:
    """`model`: diffusers' model CPU offload (each component on `device` only while it runs);
    `group`: group offloading of every component (leaf level streams layers in on CUDA).
    `keep_text` (group only: settings refuse it with `model`, whose chain always onloads the
    text encoder) leaves the text encoder out of it, on the CPU."""
    if mode == "model":
        pipe.enable_model_cpu_offload(device=device)
        return
    on_cuda = device.startswith("cuda")
    pipe.enable_group_offload(
        onload_device=torch.device(device),
        offload_device=torch.device("cpu"),
        offload_type=group_type,
        num_blocks_per_group=1 if group_type == "block_level" else None,
        use_stream=on_cuda,  # overlaps the next layer's transfer with compute
        exclude_modules=["text_encoder"] if keep_text else None,
    )


def _vae_memory(pipe: Pipeline, engine: EngineSettings) -> list[str]:
    applied = []
    if engine.vae_tiling:
        pipe.vae.enable_tiling()  # decodes in overlapping spatial tiles: less peak memory
        applied.append("vae tiling")
    if engine.vae_slicing:
        pipe.vae.enable_slicing()  # one video of a batch at a time (we decode batches of one)
        applied.append("vae slicing")
    return applied
