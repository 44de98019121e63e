"""Tiny Depth Anything V2 checkpoint built offline."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch


def save_tiny_depth(folder: Path) -> Path:
    """A random Depth Anything V2 of the real architecture, saved like a hub snapshot."""
    from transformers import DepthAnythingConfig, DepthAnythingForDepthEstimation, Dinov2Config
    from transformers.models.dpt.image_processing_pil_dpt import DPTImageProcessorPil

    torch.manual_seed(0)
    folder.mkdir(parents=True, exist_ok=True)
    # Passed as a dict: Dinov2Config takes these through **kwargs, which its stubs do not list.
    dims: dict[str, Any] = {
        "hidden_size": 16,
        "num_hidden_layers": 4,
        "num_attention_heads": 2,
        "intermediate_size": 32,
        "image_size": 28,
        "patch_size": 14,
        "out_indices": [1, 2, 3, 4],
        "reshape_hidden_states": False,
    }
    backbone = Dinov2Config(**dims)
    config = DepthAnythingConfig(
        backbone_config=backbone,
        reassemble_hidden_size=16,
        neck_hidden_sizes=[8, 8, 8, 8],
        fusion_hidden_size=8,
        head_hidden_size=4,
        patch_size=14,
    )
    DepthAnythingForDepthEstimation(config).save_pretrained(folder)
    # the Depth-Anything-V2-*-hf preprocessor, at a tiny size
    DPTImageProcessorPil(
        size={"height": 28, "width": 28},
        keep_aspect_ratio=True,
        ensure_multiple_of=14,
        resample=3,
        do_pad=False,
        image_mean=[0.485, 0.456, 0.406],
        image_std=[0.229, 0.224, 0.225],
    ).save_pretrained(folder)
    return folder
