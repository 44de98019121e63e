"""VACE_COMPILE: the repeated blocks are compiled and the compile happens in the warm-up at
load, so a task at a warm-up shape traces nothing new. The `eager` backend keeps it quick on
CPU: Dynamo still captures every graph (what the first user would otherwise wait for); only
inductor's code generation, a GPU-side cost, is left out."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import torch
from torch._dynamo.utils import counters

from vace_server.engine.loader import ModelLoadError, load_model
from vace_server.engine.runner import generate
from vace_server.engine.warmup import warmup_inputs
from vace_server.settings import Settings

# 9 frames at a 2048-pixel area: warm-up sizes 64x32 (16:9 within the area) and 32x64.
SMALL = {"model": "tiny", "num_frames": 9, "generation_area": 2048}


@pytest.fixture
def fresh_dynamo() -> Iterator[None]:
    torch._dynamo.reset()
    counters.clear()
    yield
    torch._dynamo.reset()


def _graphs() -> int:
    return int(counters["stats"]["unique_graphs"])


@pytest.mark.slow
def test_compile_wraps_the_repeated_blocks_and_the_warm_up_pays_the_compile(
    fresh_dynamo: None,
) -> None:
    model = load_model(Settings(compile=True, compile_backend="eager", **SMALL))
    transformer = model.pipe.transformer
    for block in [*transformer.blocks, *transformer.vace_blocks]:
        assert block._compiled_call_impl is not None  # nn.Module.compile's wrapper
    assert transformer._compiled_call_impl is None  # regional: only the blocks
    compiled_at_load = _graphs()
    assert compiled_at_load > 0  # the warm-up traced them

    landscape, portrait = warmup_inputs(model)
    assert (landscape.width, landscape.height) == (64, 32)
    assert (portrait.width, portrait.height) == (32, 64)
    out = generate(model, landscape, prompt="a cat", negative_prompt="negative", seed=1)
    generate(model, portrait, prompt="a dog", negative_prompt="negative", seed=2)
    assert _graphs() == compiled_at_load  # the first tasks compile nothing

    stock = load_model(Settings(**SMALL))
    expected = generate(stock, landscape, prompt="a cat", negative_prompt="negative", seed=1)
    np.testing.assert_allclose(out, expected, atol=1e-5)  # eager-compiled: the same maths


def test_a_compile_that_cannot_work_fails_the_load(fresh_dynamo: None) -> None:
    with pytest.raises(ModelLoadError, match=r"VACE_COMPILE=1 \(backend no_such_backend"):
        load_model(Settings(compile=True, compile_backend="no_such_backend", **SMALL))
