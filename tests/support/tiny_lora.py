"""A LoRA file for the tiny model, built offline (the `tiny_lora` fixture in tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import torch
from diffusers import WanVACEPipeline

from vace_server.engine.tiny import build_tiny_pipeline


def save_tiny_lora(folder: Path, *, seed: int) -> Path:
    """A LoRA for the tiny transformer's attention projections, made with PEFT and saved with
    the pipeline's own `save_lora_weights` (the diffusers layout), with random A and B (PEFT's
    default B = 0 would make a LoRA that changes nothing).

    Returns: the .safetensors file. Side effects: writes it under `folder`."""
    from peft import LoraConfig, get_peft_model_state_dict

    pipe = build_tiny_pipeline()
    config = LoraConfig(
        r=4,
        lora_alpha=4,
        target_modules=["to_q", "to_k", "to_v", "to_out.0"],
        init_lora_weights=False,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        pipe.transformer.add_adapter(config)
    layers = get_peft_model_state_dict(pipe.transformer)
    WanVACEPipeline.save_lora_weights(str(folder), transformer_lora_layers=layers)
    return folder / "pytorch_lora_weights.safetensors"
