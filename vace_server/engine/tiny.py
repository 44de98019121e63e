"""A tiny, randomly initialised `WanVACEPipeline` built fully offline (docs/model-inputs.md §7).

It has the real architecture (UMT5 text encoder, Wan VAE, VACE transformer with a control
branch, flow-matching UniPC scheduler) at toy widths, so the whole service -- media in, video
out -- runs on a CPU in seconds with no weights to download. Its videos are noise-like: it is
for tests, demos and development, never for real output.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from diffusers import (
    AutoencoderKLWan,
    UniPCMultistepScheduler,
    WanVACEPipeline,
    WanVACETransformer3DModel,
)
from tokenizers import Tokenizer, models, pre_tokenizers, processors
from transformers import PreTrainedTokenizerFast, UMT5Config, UMT5EncoderModel

__all__ = [
    "TINY_A14B",
    "TINY_BOUNDARY_RATIO",
    "TINY_FLOW_SHIFT",
    "TINY_MAX_SEQUENCE_LENGTH",
    "TINY_SEED",
    "build_tiny_pipeline",
    "save_tiny_pipeline",
    "tiny_tokenizer",
]

# Weights are drawn from this seed, so every build (and every worker) has identical weights.
TINY_SEED = 0
# Text tokens read by the tiny encoder; prompts are short and mostly <unk> to it anyway.
TINY_MAX_SEQUENCE_LENGTH = 32
# Any shift works for random weights; 3.0 is the value the tiny recipe was checked with.
TINY_FLOW_SHIFT = 3.0
# Same as the real checkpoints: latent frames, H/16 and W/16 must each stay below this, and 1024
# lets the tiny model run at any generation area a user may configure (the table is tiny).
TINY_ROPE_MAX_SEQ_LEN = 1024

# `VACE_MODEL=tiny-a14b`: the same tiny model laid out as Wan2.2-VACE-Fun-A14B, two
# transformers (high noise, then low noise) switched at a boundary timestep.
TINY_A14B = "tiny-a14b"
# Wan2.2-T2V-A14B's boundary, which the Fun VACE model (trained on that base) ships in its
# converted diffusers folder: `transformer` runs while t >= 0.875 * 1000, `transformer_2` after.
TINY_BOUNDARY_RATIO = 0.875

_WORDS = [
    *("a", "an", "the", "on", "in", "with", "of", "and", "is", "are", "video", "cat", "dog"),
    *("girl", "boy", "man", "woman", "red", "blue", "green", "dance", "dancing", "walks"),
    *("walking", "runs", "monkey", "forest", "street", "light", "negative"),
]


def tiny_tokenizer() -> PreTrainedTokenizerFast:
    """Word-level tokenizer; `<pad>` is mandatory (the pipeline pads prompts to max length)."""
    vocab = {"<pad>": 0, "</s>": 1, "<unk>": 2, **{w: i + 3 for i, w in enumerate(_WORDS)}}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()  # type: ignore[assignment]
    tok.post_processor = processors.TemplateProcessing(  # type: ignore[assignment]
        single="$A </s>", special_tokens=[("</s>", 1)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>"
    )


def tiny_scheduler(flow_shift: float = TINY_FLOW_SHIFT) -> UniPCMultistepScheduler:
    """The scheduler the real converted checkpoints ship (UniPC, flow prediction), so the tiny
    model exercises the same solver code and the same `flow_shift` override path."""
    return UniPCMultistepScheduler(
        prediction_type="flow_prediction",
        use_flow_sigmas=True,
        num_train_timesteps=1000,
        flow_shift=flow_shift,
    )


def _tiny_transformer() -> WanVACETransformer3DModel:
    """The VACE transformer at toy widths (weights from the current RNG state)."""
    return WanVACETransformer3DModel(
        patch_size=(1, 2, 2),
        num_attention_heads=2,
        attention_head_dim=12,
        in_channels=16,
        out_channels=16,
        text_dim=32,
        freq_dim=256,
        ffn_dim=32,
        num_layers=3,
        cross_attn_norm=True,
        qk_norm="rms_norm_across_heads",
        rope_max_seq_len=TINY_ROPE_MAX_SEQ_LEN,
        vace_layers=[0, 2],
        vace_in_channels=96,
    )


def build_tiny_pipeline(
    *, seed: int = TINY_SEED, flow_shift: float = TINY_FLOW_SHIFT, two_stage: bool = False
) -> Any:
    """Builds the tiny `WanVACEPipeline` on CPU in float32 with weights fixed by `seed`; with
    `two_stage`, laid out as Wan2.2-VACE-Fun-A14B (`transformer_2` and `boundary_ratio`).

    Returns: the pipeline (typed Any, see `loader.Pipeline`).

    Side effects: none on the global torch RNG (the build runs in a forked RNG state).
    """
    tokenizer = tiny_tokenizer()
    # Modules initialise from the global RNG; fork it so callers' random state is untouched.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        vae = AutoencoderKLWan(
            base_dim=3,
            z_dim=16,
            dim_mult=[1, 1, 1, 1],
            num_res_blocks=1,
            temperal_downsample=[False, True, True],
        )
        text_encoder = UMT5EncoderModel(
            UMT5Config(  # d_model must equal the transformer's text_dim
                vocab_size=len(tokenizer),
                d_model=32,
                d_kv=8,
                d_ff=37,
                num_layers=2,
                num_heads=4,
                relative_attention_num_buckets=8,
                dropout_rate=0.0,
            )
        ).eval()
        torch.manual_seed(seed)
        transformer = _tiny_transformer()
        # The low-noise expert: the same architecture with its own weights (seed + 1).
        transformer_2 = None
        if two_stage:
            torch.manual_seed(seed + 1)
            transformer_2 = _tiny_transformer()
    pipe: Any = WanVACEPipeline(
        transformer=transformer,
        transformer_2=transformer_2,
        boundary_ratio=TINY_BOUNDARY_RATIO if two_stage else None,
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        scheduler=tiny_scheduler(flow_shift),
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def save_tiny_pipeline(
    path: str | os.PathLike[str], *, seed: int = TINY_SEED, two_stage: bool = False
) -> Path:
    """Writes the tiny pipeline as a diffusers folder (`model_index.json`, `transformer/`, `vae/`,
    `text_encoder/`, `tokenizer/`, `scheduler/`; ~0.5 MB; with `two_stage` also
    `transformer_2/` and `boundary_ratio` in the index) that `VACE_MODEL=<path>` loads.

    Returns: the folder path. Side effects: creates/overwrites files under `path`.
    """
    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    build_tiny_pipeline(seed=seed, two_stage=two_stage).save_pretrained(str(folder))
    return folder
