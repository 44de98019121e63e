"""Matrix-multiply FLOPs of one VACE transformer forward, counted from the architecture.

The '% of bf16 peak' target (docs/benchmarks.md) divides these by the measured seconds per
step. Only matmuls and convolutions count (2 FLOPs per multiply-add), as in the usual
model-FLOP-utilisation figure: norms, RoPE, softmax and the scheduler are left out. A denoising
step runs one forward per guidance branch: two with classifier-free guidance, one without.

`counted_forward_flops` runs the real diffusers module under `torch.utils.flop_counter` on the
meta device (shapes only, no memory, no GPU), so the formula is checked against the module
itself; tests/bench/test_gpu_flops.py does that at tiny sizes, `bench.gpu --plan` at real ones.
"""

from __future__ import annotations

import math
from typing import Any

import torch

__all__ = ["activation_floor_bytes", "counted_forward_flops", "forward_flops", "latent_tokens"]

VAE_SPATIAL, VAE_TEMPORAL, LATENT_CHANNELS = 8, 4, 16  # the Wan2.1 VAE


def latent_tokens(config: dict[str, Any], width: int, height: int, num_frames: int) -> int:
    """Sequence length the transformer attends over: latent frames x patches per frame."""
    p_t, p_h, p_w = config["patch_size"]
    frames = (num_frames - 1) // VAE_TEMPORAL + 1
    return (frames // p_t) * (height // VAE_SPATIAL // p_h) * (width // VAE_SPATIAL // p_w)


def _block_flops(tokens: int, text: int, dim: int, ffn: int) -> int:
    self_attn = 4 * 2 * tokens * dim * dim + 2 * 2 * tokens * tokens * dim  # q k v o, QK^T and AV
    cross_attn = (
        2 * 2 * tokens * dim * dim  # q and o on the video tokens
        + 2 * 2 * text * dim * dim  # k and v on the text tokens
        + 2 * 2 * tokens * text * dim
    )
    return self_attn + cross_attn + 2 * 2 * tokens * dim * ffn


def forward_flops(
    config: dict[str, Any], width: int, height: int, num_frames: int, text_len: int
) -> int:
    """FLOPs of one `WanVACETransformer3DModel` forward with `config` (its constructor
    arguments) on a `width` x `height` x `num_frames` video and `text_len` prompt tokens."""
    tokens = latent_tokens(config, width, height, num_frames)
    dim = config["num_attention_heads"] * config["attention_head_dim"]
    patch = math.prod(config["patch_size"])
    freq = config.get("freq_dim", 256)
    embeds = (
        2 * tokens * config["in_channels"] * patch * dim  # patch embedding (a strided conv)
        + 2 * tokens * config["vace_in_channels"] * patch * dim  # the control branch's
        + 2 * text_len * (config["text_dim"] * dim + dim * dim)  # text projection
        + 2 * (freq * dim + dim * dim + dim * 6 * dim)  # timestep embedding, once per video
    )
    block = _block_flops(tokens, text_len, dim, config["ffn_dim"])
    vace = len(config["vace_layers"])
    # Every VACE block projects its output (d x d); the first also projects its input.
    vace_proj = (vace + 1) * 2 * tokens * dim * dim
    head = 2 * tokens * dim * config["out_channels"] * patch
    return embeds + (config["num_layers"] + vace) * block + vace_proj + head


def counted_forward_flops(
    config: dict[str, Any], width: int, height: int, num_frames: int, text_len: int
) -> int:
    """The same number as counted by torch's FLOP counter on the real diffusers module, built
    and run on the meta device (the math attention kernel, so attention is counted as the two
    batched matmuls it is)."""
    from diffusers import WanVACETransformer3DModel
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    frames = (num_frames - 1) // VAE_TEMPORAL + 1
    shape = (frames, height // VAE_SPATIAL, width // VAE_SPATIAL)
    with torch.device("meta"):
        model: Any = WanVACETransformer3DModel(**config)
        latents = torch.empty(1, config["in_channels"], *shape)
        control = torch.empty(1, config["vace_in_channels"], *shape)
        text = torch.empty(1, text_len, config["text_dim"])
        timestep = torch.zeros(1)
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        model(
            hidden_states=latents,
            timestep=timestep,
            encoder_hidden_states=text,
            control_hidden_states=control,
            return_dict=False,
        )
    return int(counter.get_total_flops())


def activation_floor_bytes(
    config: dict[str, Any], width: int, height: int, num_frames: int, itemsize: int = 2
) -> int:
    """A lower bound on the transformer's activation memory in one forward: diffusers' VACE
    forward computes every VACE layer's hint before the main blocks and holds them all, so at
    the first main block the hints, the hidden and control states and at least one FFN
    intermediate are alive at once (bf16). Attention workspace, norms' float32 copies and the
    VAE come on top; the real peak is what bench/gpu.py measures."""
    tokens = latent_tokens(config, width, height, num_frames)
    dim = config["num_attention_heads"] * config["attention_head_dim"]
    states = (len(config["vace_layers"]) + 2) * tokens * dim
    return (states + tokens * config["ffn_dim"]) * itemsize
