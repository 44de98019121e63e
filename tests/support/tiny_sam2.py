"""A randomly initialised SAM2 of the real architecture, small enough for CPU tests, saved in
the transformers snapshot layout of `facebook/sam2.1-hiera-tiny` (model_type sam2_video)."""

from __future__ import annotations

import json
from pathlib import Path

import torch

INPUT_SIZE = 64  # the model's square input (the real checkpoints use 1024)


def save_tiny_sam2(folder: Path, seed: int = 0) -> Path:
    """Writes config.json, model.safetensors and the processor configs into `folder`."""
    from transformers import Sam2HieraDetConfig, Sam2VideoConfig, Sam2VideoModel, Sam2VisionConfig

    s = INPUT_SIZE
    backbone = Sam2HieraDetConfig(
        hidden_size=8,
        num_attention_heads=1,
        image_size=[s, s],
        blocks_per_stage=[1, 1, 2, 1],
        embed_dim_per_stage=[8, 16, 32, 64],
        num_attention_heads_per_stage=[1, 1, 1, 1],
        window_size_per_stage=[4, 4, 4, 4],
        global_attention_blocks=[3],
        window_positional_embedding_background_size=[2, 2],
    )
    vision = Sam2VisionConfig(
        backbone_config=backbone,
        backbone_channel_list=[64, 32, 16, 8],
        backbone_feature_sizes=[[s // 4, s // 4], [s // 8, s // 8], [s // 16, s // 16]],
        fpn_hidden_size=128,
    )
    config = Sam2VideoConfig(
        vision_config=vision,
        image_size=s,
        prompt_encoder_config={"hidden_size": 128, "image_size": s, "mask_input_channels": 4},
        mask_decoder_config={
            "hidden_size": 128,
            "mlp_dim": 64,
            "num_attention_heads": 2,
            "iou_head_hidden_dim": 32,
        },
        num_maskmem=3,
        memory_attention_hidden_size=128,
        memory_attention_num_layers=1,
        memory_attention_feed_forward_hidden_size=64,
        memory_attention_rope_feat_sizes=[s // 16, s // 16],
        memory_encoder_hidden_size=128,
        memory_encoder_output_channels=64,  # the memory attention's key width is fixed at 64
        mask_downsampler_embed_dim=128,
        memory_fuser_embed_dim=128,
        memory_fuser_intermediate_dim=64,
    )
    torch.manual_seed(seed)
    Sam2VideoModel(config).eval().save_pretrained(folder)
    size = {"height": s, "width": s}
    mean, std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
    (folder / "processor_config.json").write_text(
        json.dumps(
            {"point_pad_value": -10, "processor_class": "Sam2VideoProcessor", "target_size": s}
        )
    )
    (folder / "preprocessor_config.json").write_text(
        json.dumps(
            {
                "image_processor_type": "Sam2ImageProcessorFast",
                "size": size,
                "mask_size": {"height": s // 4, "width": s // 4},
                "image_mean": mean,
                "image_std": std,
            }
        )
    )
    (folder / "video_preprocessor_config.json").write_text(
        json.dumps(
            {
                "video_processor_type": "Sam2VideoVideoProcessor",
                "size": size,
                "image_mean": mean,
                "image_std": std,
            }
        )
    )
    return folder


def save_tiny_sam2_image_only(folder: Path, seed: int = 0) -> Path:
    """The same architecture as an image-only `sam2` snapshot (like facebook/sam2-hiera-tiny-hf):
    no memory modules, so it can segment images but not track."""
    from transformers import Sam2Config, Sam2Model, Sam2VideoConfig

    video = Sam2VideoConfig.from_pretrained(save_tiny_sam2(folder / "video", seed))
    parts = {
        key: getattr(video, key).to_dict()
        for key in ("vision_config", "prompt_encoder_config", "mask_decoder_config")
    }
    for part in parts.values():
        part.pop("model_type", None)
    torch.manual_seed(seed)
    Sam2Model(Sam2Config(**parts)).eval().save_pretrained(folder / "image")
    return folder / "image"
