"""bench/gpu_flops.py: the FLOP formula behind the '% of bf16 peak' target equals what torch's
FLOP counter counts on the real diffusers module, and the token counts are the models' own."""

from __future__ import annotations

import pytest

from bench.gpu_arch import ARCHS, VACE_1_3B
from bench.gpu_flops import (
    activation_floor_bytes,
    counted_forward_flops,
    forward_flops,
    latent_tokens,
)

_SMALL = {**VACE_1_3B, "num_attention_heads": 2, "attention_head_dim": 16, "ffn_dim": 48}


@pytest.mark.parametrize(
    ("config", "size"),
    [
        (ARCHS["tiny"].transformer, (64, 32, 5)),
        ({**_SMALL, "num_layers": 6, "vace_layers": [0, 3]}, (96, 64, 9)),
        ({**_SMALL, "num_layers": 4, "vace_layers": [0, 1, 2, 3], "text_dim": 24}, (48, 80, 13)),
    ],
)
def test_formula_equals_torchs_flop_counter_on_the_diffusers_module(
    config: dict[str, object], size: tuple[int, int, int]
) -> None:
    for text_len in (7, 512):
        assert forward_flops(config, *size, text_len) == counted_forward_flops(
            config, *size, text_len
        )


def test_latent_tokens_at_the_benchmark_sizes() -> None:
    # 81 frames -> 21 latent frames; 8x VAE then 2x2 patches: 480p 30x52, 720p 45x80
    assert latent_tokens(ARCHS["vace-1.3b"].transformer, 832, 480, 81) == 21 * 30 * 52
    assert latent_tokens(ARCHS["vace-14b"].transformer, 1280, 720, 81) == 21 * 45 * 80


def test_attention_dominates_at_720p_and_grows_quadratically() -> None:
    config = ARCHS["vace-14b"].transformer
    short = forward_flops(config, 1280, 720, 41, 512)
    full = forward_flops(config, 1280, 720, 81, 512)
    assert 1.9 * short < full < 4 * short  # 11 -> 21 latent frames: more than linear


def test_activation_floor_counts_the_hints_held_at_once() -> None:
    # 14B 720p: 75600 tokens x 5120 wide; 8 hints + hidden + control, one 13824-wide FFN, bf16
    expected = (10 * 75600 * 5120 + 75600 * 13824) * 2
    assert activation_floor_bytes(ARCHS["vace-14b"].transformer, 1280, 720, 81) == expected
