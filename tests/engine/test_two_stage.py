"""Wan2.2-VACE-Fun-A14B's layout (two transformers switched at `boundary_ratio`) on the tiny
model: it loads (built in memory as `tiny-a14b`, and from a saved diffusers folder with a
`transformer_2/`) and runs, each transformer on its side of the boundary."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vace_server.engine.loader import LoadedModel, load_model
from vace_server.engine.runner import generate
from vace_server.engine.tiny import TINY_A14B, TINY_BOUNDARY_RATIO, save_tiny_pipeline
from vace_server.model_inputs import VaceInputs
from vace_server.settings import Settings

SMALL = VaceInputs(width=32, height=16, num_frames=5, output_size=(32, 16), output_seconds=0.5)
STEPS = 4  # with the tiny shift 3: two timesteps above the 875 boundary, two below


def _count_forwards(module: torch.nn.Module, calls: list[float]) -> None:
    """Appends each forward's timestep to `calls` (a pre-hook sees the call's kwargs)."""

    def hook(_module: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        calls.append(float(kwargs["timestep"].flatten()[0]))

    module.register_forward_pre_hook(hook, with_kwargs=True)


def _expected_split(model: LoadedModel) -> tuple[list[float], list[float]]:
    """The scheduler's timesteps on each side of the boundary, as the pipeline splits them."""
    scheduler = copy.deepcopy(model.pipe.scheduler)
    scheduler.set_timesteps(model.num_inference_steps)
    boundary = TINY_BOUNDARY_RATIO * scheduler.config.num_train_timesteps
    timesteps = [float(t) for t in scheduler.timesteps]
    return [t for t in timesteps if t >= boundary], [t for t in timesteps if t < boundary]


def _run_counting(model: LoadedModel, guidance: float) -> tuple[list[float], list[float]]:
    high: list[float] = []
    low: list[float] = []
    _count_forwards(model.pipe.transformer, high)
    _count_forwards(model.pipe.transformer_2, low)
    model.guidance_scale = guidance
    frames = generate(model, SMALL, prompt="a cat dance", negative_prompt="negative", seed=3)
    assert frames.shape[0] == SMALL.num_frames and np.isfinite(frames).all()
    return high, low


def test_tiny_a14b_uses_both_transformers_around_the_boundary() -> None:
    model = load_model(Settings(model=TINY_A14B, num_inference_steps=STEPS))
    pipe = model.pipe
    assert model.name == TINY_A14B and model.kind == "tiny"
    assert pipe.transformer_2 is not None and pipe.transformer_2 is not pipe.transformer
    assert pipe.config.boundary_ratio == TINY_BOUNDARY_RATIO
    expected_high, expected_low = _expected_split(model)
    assert expected_high and expected_low  # the test's step count straddles the boundary

    high, low = _run_counting(model, guidance=5.0)
    # with guidance > 1 each step runs its stage's transformer twice (cond + uncond)
    assert high == [t for t in expected_high for _ in range(2)]
    assert low == [t for t in expected_low for _ in range(2)]
    assert min(high) >= TINY_BOUNDARY_RATIO * 1000 > max(low)


def test_the_two_stage_folder_loads_with_transformer_2(tmp_path: Path) -> None:
    folder = save_tiny_pipeline(tmp_path / "a14b", two_stage=True)
    index = json.loads((folder / "model_index.json").read_text())
    assert index["boundary_ratio"] == TINY_BOUNDARY_RATIO
    assert (folder / "transformer_2" / "config.json").is_file()

    # a folder loads as a real model (shift 16): the tiny shift keeps both stages in 4 steps
    model = load_model(Settings(model=str(folder), num_inference_steps=STEPS, flow_shift=3.0))
    built = load_model(Settings(model=TINY_A14B, num_inference_steps=STEPS))
    assert model.kind == "local" and model.pipe.config.boundary_ratio == TINY_BOUNDARY_RATIO
    for name in ("transformer", "transformer_2"):  # the same weights came back from disk
        loaded = getattr(model.pipe, name).state_dict()
        for key, value in getattr(built.pipe, name).state_dict().items():
            assert torch.equal(loaded[key], value), (name, key)
    # the two experts differ: a folder whose second transformer were a copy would not
    first = model.pipe.transformer.state_dict()
    second = model.pipe.transformer_2.state_dict()
    assert any(not torch.equal(first[k], second[k]) for k in first)

    high, low = _run_counting(model, guidance=1.0)  # guidance 1: one forward per step
    expected_high, expected_low = _expected_split(model)
    assert (high, low) == (expected_high, expected_low)
