"""LoRAs fused at load (VACE_LORAS, and the fast preset's VACE_DISTILL_LORA), through diffusers'
load_lora_weights + fuse_lora, on the tiny model with LoRA files built here."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from pydantic import ValidationError
from safetensors.torch import save_file

from vace_server.engine.loader import LoadedModel, ModelLoadError, load_model
from vace_server.engine.runner import generate
from vace_server.model_inputs import VaceInputs
from vace_server.settings import Settings, parse_loras

SMALL = VaceInputs(width=32, height=16, num_frames=5, output_size=(64, 32), output_seconds=0.5)


def load(**kw: object) -> LoadedModel:
    return load_model(Settings(**{"model": "tiny", "num_frames": 5, **kw}))  # type: ignore[arg-type]


def run(model: LoadedModel) -> np.ndarray:
    return generate(model, SMALL, prompt="a cat dance", negative_prompt="negative", seed=3)


def weights(model: LoadedModel) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.pipe.transformer.state_dict().items()}


def changed(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> set[str]:
    assert a.keys() == b.keys()  # fused and unloaded: no LoRA layers left behind
    return {k for k in a if not torch.equal(a[k], b[k])}


def test_parse_loras_format() -> None:
    assert parse_loras(" /a.safetensors:0.5, /b.safetensors ,") == (
        ("/a.safetensors", 0.5),
        ("/b.safetensors", 1.0),
    )
    assert parse_loras(r"C:\loras\x.safetensors") == ((r"C:\loras\x.safetensors", 1.0),)
    assert parse_loras(r"C:\loras\x.safetensors:2") == ((r"C:\loras\x.safetensors", 2.0),)
    with pytest.raises(ValidationError, match="no path"):
        Settings(loras=":0.5")
    with pytest.raises(ValidationError, match="finite"):
        Settings(loras="/a.safetensors:inf")


def test_a_lora_is_fused_into_the_weights_and_changes_the_video(tiny_lora: Path) -> None:
    base = load()
    styled = load(loras=f"{tiny_lora}:1.0")
    touched = changed(weights(base), weights(styled))
    assert touched and all(".to_q." in k or ".to_k." in k or ".to_v." in k or ".to_out.0." in k
                           for k in touched)  # fmt: skip
    assert not any("lora" in name for name, _ in styled.pipe.transformer.named_modules())
    assert not getattr(styled.pipe.transformer, "peft_config", None)  # adapters unloaded
    assert not np.array_equal(run(base), run(styled))


def test_scale_zero_or_no_lora_changes_nothing(tiny_lora: Path) -> None:
    base = load()
    zero = load(loras=f"{tiny_lora}:0")
    assert not changed(weights(base), weights(zero))
    np.testing.assert_array_equal(run(base), run(zero))


def test_scales_weigh_the_delta(tiny_lora: Path) -> None:
    """Two halves of one LoRA fuse to the same weights as the whole (up to rounding)."""
    base, whole = weights(load()), weights(load(loras=f"{tiny_lora}:1"))
    halves = weights(load(loras=f"{tiny_lora}:0.5,{tiny_lora}:0.5"))
    for key in changed(base, whole):
        torch.testing.assert_close(halves[key] - base[key], whole[key] - base[key])


def test_original_wan_key_layout_loads(tmp_path: Path) -> None:
    """The layout lightx2v / ComfyUI LoRAs are published in (`diffusion_model.blocks.N.
    self_attn.q.lora_down.weight` ...), converted by diffusers' Wan LoRA loader."""
    g = torch.Generator().manual_seed(2)
    state: dict[str, torch.Tensor] = {}
    for block in range(3):
        for layer in ("self_attn.q", "self_attn.o", "cross_attn.k", "ffn.0"):
            width_in, width_out = (24, 32) if layer == "ffn.0" else (24, 24)
            prefix = f"diffusion_model.blocks.{block}.{layer}"
            state[f"{prefix}.lora_down.weight"] = torch.randn(4, width_in, generator=g)
            state[f"{prefix}.lora_up.weight"] = torch.randn(width_out, 4, generator=g)
            state[f"{prefix}.alpha"] = torch.tensor(4.0)
    path = tmp_path / "wan_layout.safetensors"
    save_file(state, str(path))
    touched = changed(weights(load()), weights(load(loras=str(path))))
    assert "blocks.0.attn1.to_q.weight" in touched
    assert "blocks.2.attn2.to_k.weight" in touched
    assert "blocks.1.ffn.net.0.proj.weight" in touched
    assert not any(k.startswith("vace_blocks.") for k in touched)  # VACE blocks untouched


def test_bad_lora_files_fail_the_load_clearly(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match=r"VACE_LORAS.*does not exist"):
        load(loras=str(tmp_path / "missing.safetensors"))
    junk = tmp_path / "junk.safetensors"
    save_file({"not.a.lora": torch.zeros(2)}, str(junk))
    with pytest.raises(ModelLoadError, match=r"VACE_LORAS.*not a LoRA this model can load"):
        load(loras=str(junk))


def expert_weights(model: LoadedModel) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Both experts' weights of a two-expert model."""
    pipe = model.pipe
    assert pipe.transformer_2 is not None
    return weights(model), {
        k: v.detach().clone() for k, v in pipe.transformer_2.state_dict().items()
    }


def test_a_two_expert_model_takes_a_lora_into_both_experts(tiny_lora: Path) -> None:
    base = expert_weights(load(model="tiny-a14b"))
    styled = expert_weights(load(model="tiny-a14b", loras=str(tiny_lora)))
    high, low = changed(base[0], styled[0]), changed(base[1], styled[1])
    assert high and high == low  # the same file fused into each expert's own weights
    for key in high:
        torch.testing.assert_close(styled[1][key] - base[1][key], styled[0][key] - base[0][key])


def test_the_low_noise_expert_gets_its_own_loras_when_they_are_named(
    tiny_lora: Path, tmp_path: Path
) -> None:
    from tests.support.tiny_lora import save_tiny_lora

    other = save_tiny_lora(tmp_path, seed=12)
    base = expert_weights(load(model="tiny-a14b"))
    paired = expert_weights(load(model="tiny-a14b", loras=str(tiny_lora), loras_2=str(other)))
    alone = expert_weights(load(model="tiny-a14b", loras=str(other)))
    high_only = expert_weights(load(model="tiny-a14b", loras=str(tiny_lora), loras_2=""))
    assert changed(paired[1], alone[1]) == set()  # transformer_2: the second file only
    assert changed(paired[0], high_only[0]) == set()  # transformer: the first file only
    assert changed(base[1], high_only[1]) == set()  # empty VACE_LORAS_2: nothing there
    assert changed(base[0], high_only[0])


def test_a_low_noise_lora_on_a_one_expert_model_is_refused(tiny_lora: Path) -> None:
    with pytest.raises(ModelLoadError, match=r"VACE_LORAS_2 is set but this model has one"):
        load(loras_2=str(tiny_lora))
