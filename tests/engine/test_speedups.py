"""Each acceleration switch is APPLIED to the tiny model, not just accepted: hooks present,
parameter dtypes, forward-call counts, outputs changed where the method approximates and
identical where it must not change anything."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
import torch
from diffusers import FirstBlockCacheConfig, MagCacheConfig
from diffusers.hooks.group_offloading import _is_group_offload_enabled
from diffusers.models.attention_dispatch import AttentionBackendName, _AttentionBackendRegistry

from tests.support.torch_threads import single_torch_thread
from vace_server.engine import loader, runner
from vace_server.engine.loader import LoadedModel, ModelLoadError, load_model
from vace_server.engine.runner import generate
from vace_server.engine.speedups import attention_problem, enable_offload
from vace_server.model_inputs import VaceInputs
from vace_server.settings import Settings

SMALL = VaceInputs(width=32, height=16, num_frames=9, output_size=(32, 16), output_seconds=0.5)


def load(**kwargs: Any) -> LoadedModel:
    return load_model(Settings(model="tiny", **kwargs))


def run(model: LoadedModel, on_step: Callable[[int, int], None] | None = None) -> np.ndarray:
    return generate(
        model, SMALL, prompt="a cat", negative_prompt="negative", seed=3, on_step=on_step
    )


def count_calls(model: LoadedModel, suffix: str) -> dict[str, int]:
    """Real computations of every module named `*suffix` (a Linear inside an attention layer:
    a cache hook that skips the layer never reaches it)."""
    counts: dict[str, int] = {}
    for name, module in model.pipe.transformer.named_modules():
        if name.endswith(suffix):
            counts[name] = 0

            def hook(_m: Any, _a: Any, key: str = name) -> None:
                counts[key] += 1

            module.register_forward_pre_hook(hook)
    return counts


@pytest.fixture(scope="module")
def reference() -> dict[int, np.ndarray]:
    """Stock outputs by step count, guidance 5, on one torch thread like the tests that compare
    against them: a module fixture is set up before the function-scoped `one_torch_thread`,
    and a float32 sum split over two threads differs in the last bit (seen on AVX-512)."""
    with single_torch_thread():
        return {steps: run(load(num_inference_steps=steps)) for steps in (4, 6)}


@pytest.fixture
def keep_attention_backend() -> Iterator[None]:
    # set_attention_backend also sets diffusers' process-wide default: restore it.
    before = _AttentionBackendRegistry._active_backend
    yield
    _AttentionBackendRegistry._active_backend = before


# ------------------------------------------------------------------------------ precision
def test_bf16_is_the_cuda_default_and_the_vae_stays_float32() -> None:
    assert loader._resolve_dtype("auto", "cuda") == torch.bfloat16
    model = load(dtype="bf16")
    assert {p.dtype for p in model.pipe.transformer.parameters()} == {torch.bfloat16}
    assert {p.dtype for p in model.pipe.text_encoder.parameters()} == {torch.bfloat16}
    assert {p.dtype for p in model.pipe.vae.parameters()} == {torch.float32}


def test_vae_dtype_setting_converts_the_vae() -> None:
    model = load(vae_dtype="bf16")
    assert {p.dtype for p in model.pipe.vae.parameters()} == {torch.bfloat16}
    assert {p.dtype for p in model.pipe.transformer.parameters()} == {torch.float32}


def test_layerwise_casting_stores_fp8_and_computes_in_the_model_dtype(
    reference: dict[int, np.ndarray],
) -> None:
    model = load(layerwise_casting="float8_e4m3fn", num_inference_steps=4)
    transformer = model.pipe.transformer
    linear = transformer.blocks[0].attn1.to_q
    assert linear.weight.dtype == torch.float8_e4m3fn
    # diffusers' skip patterns keep embeddings and norms in full precision
    assert transformer.patch_embedding.weight.dtype == torch.float32
    assert transformer.condition_embedder.time_embedder.linear_1.weight.dtype == torch.float32
    out = run(model)
    assert np.isfinite(out).all()
    assert not np.array_equal(out, reference[4])  # fp8-rounded weights: a different video
    assert linear.weight.dtype == torch.float8_e4m3fn  # stored back after each forward


# ------------------------------------------------------------------------------ attention
def test_attention_backend_is_set_on_every_processor(
    reference: dict[int, np.ndarray], keep_attention_backend: None
) -> None:
    model = load(attention_backend="_native_math", num_inference_steps=4)
    backends = {
        module.processor._attention_backend
        for module in model.pipe.transformer.modules()
        if hasattr(module, "processor")
    }
    assert backends == {AttentionBackendName._NATIVE_MATH}
    np.testing.assert_allclose(run(model), reference[4], atol=1e-5)  # same maths, other kernel


def test_attention_backend_without_its_package_fails_at_load() -> None:
    with pytest.raises(ModelLoadError, match=r"VACE_ATTENTION_BACKEND=flash: .*flash-attn"):
        load(attention_backend="flash")
    with pytest.raises(ModelLoadError, match=r"not a diffusers backend: .*native"):
        load(attention_backend="flashy")


def test_attention_backend_device_checks() -> None:
    assert attention_problem("native", "cpu", None) is None
    assert attention_problem("flex", "cpu", None) is None
    assert "needs a CUDA GPU" in str(attention_problem("sage", "cpu", None))
    assert "8.0 or newer; this one is 7.5" in str(attention_problem("flash", "cuda", (7, 5)))
    assert "9.0" in str(attention_problem("_flash_3", "cuda:1", (8, 9)))
    assert attention_problem("_flash_3", "cuda", (9, 0)) is None
    assert attention_problem("xformers", "cuda", (7, 0)) is None  # no minimum we know of


# ------------------------------------------------------------------------------ caches
def test_taylorseer_predicts_attention_between_full_steps(
    reference: dict[int, np.ndarray],
) -> None:
    model = load(cache="taylorseer", cache_interval=2, num_inference_steps=6)
    transformer = model.pipe.transformer
    assert transformer.is_cache_enabled
    assert "taylorseer_cache" in transformer.blocks[0].attn1._diffusers_hook.hooks
    assert "taylorseer_cache" in transformer.vace_blocks[0].ffn._diffusers_hook.hooks
    counts = count_calls(model, "attn1.to_q")
    out = run(model)
    assert all(0 < n < 12 for n in counts.values()), counts  # 6 steps x 2 CFG passes = 12
    assert not np.array_equal(out, reference[6])


def test_cache_runs_are_deterministic_even_after_an_aborted_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    model = load(cache="taylorseer", cache_interval=2, num_inference_steps=6)
    first = run(model)

    def cancel(done: int, total: int) -> None:
        if done == 4:  # mid-way, with Taylor factors in the cache
            raise KeyboardInterrupt  # what a cancel does: the run stops mid-denoise

    with pytest.raises(KeyboardInterrupt):
        run(model, on_step=cancel)
    np.testing.assert_array_equal(run(model), first)
    # ...thanks to the reset before each run: without it the leftover state changes the video
    monkeypatch.setattr(runner, "reset_cache_state", lambda pipe: None)
    with pytest.raises(KeyboardInterrupt):
        run(model, on_step=cancel)
    assert not np.array_equal(run(model), first)


def test_pab_needs_guidance_one_and_then_reuses_attention() -> None:
    with pytest.raises(ModelLoadError, match=r"VACE_CACHE=pab .* needs guidance 1"):
        load(cache="pab", guidance_scale=5.0)
    model = load(cache="pab", cache_interval=2, num_inference_steps=6, guidance_scale=1.0)
    assert (
        "pyramid_attention_broadcast"
        in model.pipe.transformer.blocks[0].attn1._diffusers_hook.hooks
    )
    counts = count_calls(model, "attn1.to_q")
    stock = load(num_inference_steps=6, guidance_scale=1.0)
    out, expected = run(model), run(stock)
    assert all(n < 6 for n in counts.values()), counts  # 6 steps, one pass each
    assert not np.array_equal(out, expected)


@pytest.mark.parametrize(
    "config",
    [
        FirstBlockCacheConfig(threshold=10.0),
        MagCacheConfig(threshold=10.0, num_inference_steps=2, mag_ratios=[1.0, 1.0]),
    ],
    ids=["first_block", "mag"],
)
def test_block_residual_caches_add_the_vace_hints_twice(config: Any) -> None:
    """Why the settings refuse first_block and mag: a cached step on the very same input must
    give the very same output, and does when the VACE hints are off, but not with them: the
    cached residual already holds the hints and the forward loop adds them again. When this
    fails, diffusers has fixed it: offer the two methods again (settings/speedups.py)."""
    transformer = load().pipe.transformer
    transformer.enable_cache(config)
    generator = torch.Generator().manual_seed(0)
    latents, control = (torch.randn(1, n, 3, 4, 4, generator=generator) for n in (16, 96))
    args = (latents, torch.tensor([500]), torch.randn(1, 8, 32, generator=generator))

    def twice(scale: torch.Tensor) -> float:
        kwargs = {"control_hidden_states": control, "control_hidden_states_scale": scale}
        with torch.no_grad(), transformer.cache_context("cond"):
            computed = transformer(*args, **kwargs, return_dict=False)[0]
            cached = transformer(*args, **kwargs, return_dict=False)[0]
        transformer._reset_stateful_cache()
        return float((computed - cached).abs().max())

    assert twice(torch.zeros(2)) < 1e-5  # no hints: the cache is exact
    assert twice(torch.ones(2)) > 0.1  # hints: the cached step is off


# ------------------------------------------------------------------------------ placement
def test_offload_settings_are_ignored_on_cpu_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    model = load(offload="group")
    assert not _is_group_offload_enabled(model.pipe.transformer)
    assert "VACE_OFFLOAD=group" in caplog.text


def test_model_cpu_offload_hooks_every_component(reference: dict[int, np.ndarray]) -> None:
    # On a CPU-only machine the "GPU" is the CPU too: the hooks are real, the moves no-ops.
    model = load(num_inference_steps=4)
    enable_offload(model.pipe, "model", "cpu", "leaf_level")
    for name in ("text_encoder", "transformer", "vae"):
        assert hasattr(getattr(model.pipe, name), "_hf_hook"), name
    np.testing.assert_array_equal(run(model), reference[4])


@pytest.mark.parametrize("group_type", ["leaf_level", "block_level"])
def test_group_offload_hooks_and_keeps_the_output(
    reference: dict[int, np.ndarray], group_type: str
) -> None:
    model = load(num_inference_steps=4)
    enable_offload(model.pipe, "group", "cpu", group_type, keep_text=True)
    assert _is_group_offload_enabled(model.pipe.transformer)
    assert _is_group_offload_enabled(model.pipe.vae)
    assert not _is_group_offload_enabled(model.pipe.text_encoder)  # left on the CPU
    np.testing.assert_array_equal(run(model), reference[4])


def test_vae_tiling_and_slicing_are_enabled_and_used(reference: dict[int, np.ndarray]) -> None:
    model = load(vae_tiling=True, vae_slicing=True, num_inference_steps=4)
    vae = model.pipe.vae
    assert vae.use_tiling and vae.use_slicing
    # Below the tile size (256 px) diffusers decodes in one piece: the very same video.
    np.testing.assert_array_equal(run(model), reference[4])
    calls = []
    tiled = vae.tiled_decode

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return tiled(*args, **kwargs)

    vae.tiled_decode = counted
    vae.tile_sample_min_height = vae.tile_sample_min_width = 16
    vae.tile_sample_stride_height = vae.tile_sample_stride_width = 8
    assert run(model).shape == reference[4].shape
    assert calls  # a video larger than a tile goes through the tiled decoder
