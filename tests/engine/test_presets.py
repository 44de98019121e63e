"""Speed presets: their values, the fast preset's scheduler, and that guidance 1 skips the
unconditional transformer pass (counted), on the tiny model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from vace_server.engine.loader import LoadedModel, ModelLoadError, load_model
from vace_server.engine.presets import DistillEulerScheduler, resolve_preset
from vace_server.engine.runner import generate
from vace_server.model_inputs import VaceInputs
from vace_server.settings import EngineSettings, Settings

SMALL = VaceInputs(width=32, height=16, num_frames=5, output_size=(64, 32), output_seconds=0.5)


def run(model: LoadedModel, seed: int = 3) -> np.ndarray:
    return generate(model, SMALL, prompt="a cat dance", negative_prompt="negative", seed=seed)


def count_calls(module: torch.nn.Module) -> list[int]:
    """A one-element counter of `module`'s forward calls."""
    calls = [0]

    def hook(*_: Any) -> None:
        calls[0] += 1

    module.register_forward_pre_hook(hook)
    return calls


def test_preset_values_per_model_and_explicit_settings_win() -> None:
    def resolved(**kw: Any) -> tuple[Any, ...]:
        p = resolve_preset(EngineSettings(**kw), model_steps=50, model_shift=16.0)
        return (p.name, p.steps, p.guidance_scale, p.flow_shift, p.scheduler, p.distill_lora)

    assert resolved() == ("quality", 50, 5.0, 16.0, "model", False)
    assert resolved(preset="balanced") == ("balanced", 20, 5.0, 16.0, "model", False)
    fast = resolved(preset="fast", distill_lora=Path("/l.safetensors"))
    assert fast == ("fast", 4, 1.0, 5.0, "distill_euler", True)
    explicit = resolve_preset(
        EngineSettings(
            preset="fast",
            distill_lora=Path("/l.safetensors"),
            num_inference_steps=6,
            guidance_scale=2.0,
            flow_shift=8.0,
        ),
        model_steps=50,
        model_shift=16.0,
    )
    assert (explicit.steps, explicit.guidance_scale, explicit.flow_shift) == (6, 2.0, 8.0)
    # What a task that recorded no value runs: the preset's own, not the override.
    assert (explicit.default_steps, explicit.default_guidance_scale) == (4, 1.0)
    assert explicit.default_flow_shift == 5.0


def test_fast_needs_its_lora_and_bad_presets_are_refused() -> None:
    with pytest.raises(ValidationError, match="VACE_PRESET=fast needs VACE_DISTILL_LORA"):
        Settings(preset="fast")
    with pytest.raises(ValidationError, match="preset"):
        Settings(preset="turbo")
    missing = Settings(model="tiny", preset="fast", distill_lora="/nowhere/distill.safetensors")
    with pytest.raises(ModelLoadError, match=r"VACE_DISTILL_LORA.*does not exist.*never downloads"):
        load_model(missing)


def test_distill_scheduler_walks_lightx2v_grid() -> None:
    """LightX2V's Wan2.1 distill schedule: timesteps 1000/750/500/250 shifted by 5, each step
    predicting x0 and re-noising it to the next sigma (the last one returns x0)."""
    scheduler = DistillEulerScheduler(shift=5.0, stochastic_sampling=True)
    scheduler.set_timesteps(4)
    expected = [5 * t / (1 + 4 * t) for t in (1.0, 0.75, 0.5, 0.25)]
    np.testing.assert_allclose(scheduler.sigmas.numpy(), [*expected, 0.0], rtol=1e-6)
    np.testing.assert_allclose(scheduler.timesteps.numpy(), np.array(expected) * 1000, rtol=1e-6)

    sample, velocity = torch.ones(1, 4), torch.full((1, 4), 0.5)
    x0 = sample - expected[0] * velocity
    torch.manual_seed(0)
    noise = torch.randn(1, 4)
    torch.manual_seed(0)
    out = scheduler.step(velocity, scheduler.timesteps[0], sample, return_dict=False)[0]
    torch.testing.assert_close(out, (1 - expected[1]) * x0 + expected[1] * noise)


def test_guidance_one_skips_the_unconditional_pass(tiny_lora: Path) -> None:
    quality = load_model(Settings(model="tiny", num_frames=5))
    calls = count_calls(quality.pipe.transformer)
    run(quality)
    assert quality.num_inference_steps == 2
    assert calls[0] == 2 * 2  # CFG: conditional + unconditional pass per step

    fast = load_model(Settings(model="tiny", num_frames=5, preset="fast", distill_lora=tiny_lora))
    assert (fast.num_inference_steps, fast.guidance_scale, fast.flow_shift) == (4, 1.0, 5.0)
    assert isinstance(fast.pipe.scheduler, DistillEulerScheduler)
    assert fast.pipe.scheduler.config.stochastic_sampling
    calls = count_calls(fast.pipe.transformer)
    run(fast)
    assert calls[0] == 4  # one pass per step: the unconditional one is never computed


def test_fast_is_one_video_per_seed(tiny_lora: Path) -> None:
    """The re-noising step draws from the global RNG, which the runner seeds from the task."""
    fast = load_model(Settings(model="tiny", num_frames=5, preset="fast", distill_lora=tiny_lora))
    torch.manual_seed(123)  # whatever the caller's RNG state, the seed decides
    first = run(fast, seed=5)
    torch.manual_seed(456)
    state = torch.random.get_rng_state()
    np.testing.assert_array_equal(run(fast, seed=5), first)
    assert torch.equal(torch.random.get_rng_state(), state)  # the caller's RNG is restored
    assert not np.array_equal(run(fast, seed=6), first)
