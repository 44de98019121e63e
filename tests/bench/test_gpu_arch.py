"""bench/gpu_arch.py: the published architectures, built without memory (meta) or at toy
widths, with the load dtypes a downloaded checkpoint gets."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from bench.gpu_arch import (
    ARCHS,
    build_pipeline,
    component_sizes,
    meta_components,
    write_random_lora,
)


def test_real_architectures_have_the_published_shapes() -> None:
    parts = meta_components(ARCHS["vace-14b"])
    transformer, text = parts["transformer"], parts["text_encoder"]
    assert len(transformer.blocks) == 40 and len(transformer.vace_blocks) == 8
    assert transformer.blocks[0].attn1.to_q.in_features == 5120
    assert text.config.d_model == 4096 and len(text.encoder.block) == 24
    small = meta_components(ARCHS["vace-1.3b"])["transformer"]
    assert len(small.blocks) == 30 and len(small.vace_blocks) == 15
    assert small.blocks[0].ffn.net[2].in_features == 8960
    assert set(meta_components(ARCHS["vace-fun-a14b"])) == {
        "transformer", "transformer_2", "text_encoder", "vae"
    }  # fmt: skip


def test_weight_bytes_follow_the_load_dtypes() -> None:
    sizes = component_sizes(ARCHS["vace-1.3b"])
    text, vae, transformer = sizes["text_encoder"], sizes["vae"], sizes["transformer"]
    assert text["bytes"] == 2 * text["params"]  # bf16
    assert vae["bytes"] == 4 * vae["params"]  # float32, as the loader keeps it
    # bf16, except the few modules diffusers keeps in float32 (norms, embedders, tables)
    assert 2 * transformer["params"] < transformer["bytes"] < 2.01 * transformer["params"]


def test_built_pipeline_is_two_expert_with_float32_kept_modules() -> None:
    pipe = build_pipeline(ARCHS["tiny"], "cpu", torch.bfloat16)
    assert pipe.transformer_2 is not None and pipe.config.boundary_ratio == 0.875
    assert pipe.transformer.blocks[0].attn1.to_q.weight.dtype == torch.bfloat16
    assert pipe.transformer.scale_shift_table.dtype == torch.float32
    assert pipe.text_encoder.dtype == torch.bfloat16 and pipe.vae.dtype == torch.float32
    again = build_pipeline(ARCHS["tiny"], "cpu", torch.bfloat16)
    assert torch.equal(again.transformer.proj_out.weight, pipe.transformer.proj_out.weight)


def test_random_lora_loads_into_the_pipeline_and_changes_the_transformer(tmp_path: Path) -> None:
    pytest.importorskip("peft")
    arch = ARCHS["tiny"]
    path = write_random_lora(arch, tmp_path / "lora.safetensors", rank=4)
    pipe = build_pipeline(arch, "cpu", torch.float32)
    before = pipe.transformer.blocks[1].ffn.net[2].weight.clone()
    pipe.load_lora_weights(str(path))
    pipe.fuse_lora()
    assert not torch.equal(pipe.transformer.blocks[1].ffn.net[2].weight, before)


@pytest.mark.parametrize("key", ["vace-1.3b", "vace-14b", "vace-fun-a14b"])
def test_real_size_pipeline_assembles_on_the_meta_device(key: str) -> None:
    arch = ARCHS[key]
    pipe = build_pipeline(arch, "meta", torch.bfloat16)
    assert pipe.transformer.config.num_layers == arch.transformer["num_layers"]
    assert (pipe.transformer_2 is not None) == (arch.experts == 2)
    assert pipe.text_encoder.config.vocab_size == 256384 and pipe.vae.config.z_dim == 16
