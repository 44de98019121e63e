"""The real-size Wan VACE architectures, built with random weights (no download).

Configuration values are the published ones: the VACE transformers as diffusers' Wan conversion
script (`scripts/convert_wan_to_diffusers.py`, model types `Wan-VACE-1.3B`, `Wan-VACE-14B`,
`Wan2.2-VACE-Fun-14B`) writes them, the Wan2.1 VAE as `AutoencoderKLWan()`'s defaults (which is
what that script builds), and UMT5-XXL as google/umt5-xxl's `config.json`. Wan2.2-VACE-Fun-A14B
is two transformers of the VACE-14B shape (high-noise and low-noise experts) switched at
`boundary_ratio` 0.875, as the conversion script assembles it.

`ARCHS` also holds `tiny`, a scaled-down copy of the same component types for the CPU smoke
test: the bench's code path is identical, only the widths differ.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from diffusers import (
    AutoencoderKLWan,
    UniPCMultistepScheduler,
    WanVACEPipeline,
    WanVACETransformer3DModel,
)
from transformers import UMT5Config, UMT5EncoderModel

from vace_server.engine.tiny import tiny_tokenizer

__all__ = [
    "ARCHS",
    "Arch",
    "build_pipeline",
    "component_sizes",
    "meta_components",
    "write_random_lora",
]

# Shared by every VACE transformer of diffusers' conversion script.
_VACE_COMMON: dict[str, Any] = {
    "added_kv_proj_dim": None,
    "attention_head_dim": 128,
    "cross_attn_norm": True,
    "eps": 1e-06,
    "freq_dim": 256,
    "in_channels": 16,
    "out_channels": 16,
    "patch_size": [1, 2, 2],
    "qk_norm": "rms_norm_across_heads",
    "text_dim": 4096,
    "vace_in_channels": 96,
}
VACE_1_3B = {
    **_VACE_COMMON,
    "ffn_dim": 8960,
    "num_attention_heads": 12,
    "num_layers": 30,
    "vace_layers": list(range(0, 30, 2)),  # 0, 2, ..., 28
}
VACE_14B = {
    **_VACE_COMMON,
    "ffn_dim": 13824,
    "num_attention_heads": 40,
    "num_layers": 40,
    "vace_layers": list(range(0, 40, 5)),  # 0, 5, ..., 35
}
# google/umt5-xxl (the encoder half is what Wan uses).
UMT5_XXL: dict[str, Any] = {
    "vocab_size": 256384,
    "d_model": 4096,
    "d_kv": 64,
    "d_ff": 10240,
    "num_layers": 24,
    "num_heads": 64,
    "relative_attention_num_buckets": 32,
    "relative_attention_max_distance": 128,
    "feed_forward_proj": "gated-gelu",
    "tie_word_embeddings": False,
    "dropout_rate": 0.0,
}
WAN21_VAE: dict[str, Any] = {}  # AutoencoderKLWan() defaults: base_dim 96, z_dim 16, [1, 2, 4, 4]

_TINY_TRANSFORMER = {
    **_VACE_COMMON,
    "attention_head_dim": 8,
    "ffn_dim": 32,
    "num_attention_heads": 2,
    "num_layers": 4,
    "vace_layers": [0, 2],
    "text_dim": 32,
}
_TINY_TEXT = {
    **UMT5_XXL,
    **{"vocab_size": 64, "d_model": 32, "d_kv": 8, "d_ff": 40, "num_layers": 2, "num_heads": 4},
}
_TINY_VAE = {"base_dim": 4, "dim_mult": [1, 1, 1, 1], "num_res_blocks": 1}


@dataclass(frozen=True)
class Arch:
    """One model's components: the transformer config (twice for a two-expert model), the
    text encoder's and the VAE's, and the generation size the model is benchmarked at."""

    key: str
    title: str
    transformer: dict[str, Any]
    text_encoder: dict[str, Any]
    vae: dict[str, Any]
    width: int
    height: int
    num_frames: int = 81
    experts: int = 1  # 2: transformer + transformer_2 of the same shape
    boundary_ratio: float | None = None


ARCHS: dict[str, Arch] = {
    "vace-1.3b": Arch("vace-1.3b", "Wan2.1-VACE-1.3B", VACE_1_3B, UMT5_XXL, WAN21_VAE, 832, 480),
    "vace-14b": Arch("vace-14b", "Wan2.1-VACE-14B", VACE_14B, UMT5_XXL, WAN21_VAE, 1280, 720),
    "vace-fun-a14b": Arch(
        "vace-fun-a14b",
        "Wan2.2-VACE-Fun-A14B",
        VACE_14B,
        UMT5_XXL,
        WAN21_VAE,
        1280,
        720,
        experts=2,
        boundary_ratio=0.875,
    ),
    # The CPU smoke test's stand-in: same classes, toy widths, 64x32 x 5 frames.
    "tiny": Arch(
        "tiny",
        "tiny (smoke test)",
        _TINY_TRANSFORMER,
        _TINY_TEXT,
        _TINY_VAE,
        64,
        32,
        num_frames=5,
        experts=2,
        boundary_ratio=0.875,
    ),
}


def _text_config(arch: Arch) -> UMT5Config:
    return UMT5Config(**arch.text_encoder)


def _keep_fp32(model: Any, dtype: torch.dtype) -> Any:
    """Casts to `dtype` but keeps the parameters diffusers' `from_pretrained(torch_dtype=...)`
    keeps in float32 (`_keep_in_fp32_modules`, matched on dotted name parts, as diffusers
    matches them): the random model then holds the same bytes a loaded checkpoint holds."""
    model.to(dtype)
    keep = getattr(model, "_keep_in_fp32_modules", None) or []
    if dtype != torch.float32 and keep:
        for name, param in model.named_parameters():
            if any(part in keep for part in name.split(".")):
                param.data = param.data.to(torch.float32)
    return model


def meta_components(arch: Arch) -> dict[str, Any]:
    """The components on the meta device (shapes only, no memory): for counting."""
    with torch.device("meta"):
        parts: dict[str, Any] = {"transformer": WanVACETransformer3DModel(**arch.transformer)}
        if arch.experts == 2:
            parts["transformer_2"] = WanVACETransformer3DModel(**arch.transformer)
        parts["text_encoder"] = UMT5EncoderModel(_text_config(arch))
        parts["vae"] = AutoencoderKLWan(**arch.vae)
    return parts


def component_sizes(arch: Arch, dtype: torch.dtype = torch.bfloat16) -> dict[str, dict[str, int]]:
    """Parameter count and resident weight bytes per component, computed on the meta device
    with the load dtypes the server uses: `dtype` for the transformer(s) (their float32-kept
    modules in float32) and the text encoder, float32 for the VAE (engine/loader.py)."""
    sizes: dict[str, dict[str, int]] = {}
    for name, module in meta_components(arch).items():
        if name.startswith("transformer"):
            module = _keep_fp32(module, dtype)
        elif name == "text_encoder":
            module = module.to(dtype)
        params = list(module.parameters())
        sizes[name] = {
            "params": sum(p.numel() for p in params),
            "bytes": sum(p.numel() * p.element_size() for p in params),
        }
    return sizes


def _build_transformer(arch: Arch, device: str, dtype: torch.dtype) -> Any:
    # Built in float32 on the target device (default init, fast on a GPU), then cast one
    # model at a time so the float32 copy of only one transformer is ever resident.
    with torch.device(device):
        model: Any = WanVACETransformer3DModel(**arch.transformer)
    return _keep_fp32(model, dtype).eval().requires_grad_(False)


def build_pipeline(arch: Arch, device: str, dtype: torch.dtype, *, seed: int = 0) -> Any:
    """A `WanVACEPipeline` of `arch` with random weights, built on `device` in the dtypes the
    loader would give a downloaded checkpoint (VAE float32). The tokenizer is the tiny model's
    word-level one: every prompt is padded to the same 512 tokens anyway, so the text encoder's
    cost is the same as with the real SentencePiece vocabulary.

    Side effects: seeds torch's global RNG (random init must not differ between runs).
    """
    torch.manual_seed(seed)
    transformer = _build_transformer(arch, device, dtype)
    transformer_2 = _build_transformer(arch, device, dtype) if arch.experts == 2 else None
    with torch.device(device):
        text_encoder: Any = UMT5EncoderModel(_text_config(arch))
        vae: Any = AutoencoderKLWan(**arch.vae)
    text_encoder = text_encoder.to(dtype).eval().requires_grad_(False)
    vae = vae.to(torch.float32).eval().requires_grad_(False)
    scheduler = UniPCMultistepScheduler(
        prediction_type="flow_prediction",
        use_flow_sigmas=True,
        num_train_timesteps=1000,
        flow_shift=3.0,  # the converted checkpoints' value; the loader applies its own
    )
    pipe: Any = WanVACEPipeline(
        transformer=transformer,
        transformer_2=transformer_2,
        boundary_ratio=arch.boundary_ratio,
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tiny_tokenizer(),
        scheduler=scheduler,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def write_random_lora(arch: Arch, path: Path, *, rank: int = 64, seed: int = 0) -> Path:
    """A random LoRA in diffusers' own key layout (`transformer.<module>.lora_A.weight`) for
    every linear layer of the transformer's main blocks, which is what the published
    step-distill LoRAs adapt. Stands in for `VACE_DISTILL_LORA` when a `fast` row runs with
    random weights: loading and fusing it costs what the real file costs, and a fused LoRA
    leaves the per-step cost unchanged. Returns `path`."""
    from safetensors.torch import save_file

    generator = torch.Generator().manual_seed(seed)
    tensors: dict[str, torch.Tensor] = {}
    for name, module in meta_components(arch)["transformer"].named_modules():
        if not (name.startswith("blocks.") and isinstance(module, torch.nn.Linear)):
            continue
        down = torch.randn(rank, module.in_features, generator=generator) / module.in_features
        up = torch.randn(module.out_features, rank, generator=generator) / rank
        tensors[f"transformer.{name}.lora_A.weight"] = down.to(torch.bfloat16)
        tensors[f"transformer.{name}.lora_B.weight"] = up.to(torch.bfloat16)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path))
    return path
