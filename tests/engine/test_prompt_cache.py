"""The encoded-prompt cache: the text encoder runs once per distinct prompt (counted), the
default negative once per worker, and the video is the one the pipeline makes from text."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from tests.engine.test_presets import count_calls
from vace_server.engine.loader import LoadedModel, load_model
from vace_server.engine.prompt_cache import PromptCache
from vace_server.engine.runner import generate
from vace_server.engine.tiny import build_tiny_pipeline
from vace_server.model_inputs import VaceInputs
from vace_server.settings import DEFAULT_NEGATIVE_PROMPT, Settings

SMALL = VaceInputs(width=32, height=16, num_frames=5, output_size=(64, 32), output_seconds=0.5)


def load(**kw: object) -> LoadedModel:
    return load_model(Settings(model="tiny", num_frames=5, **kw))  # type: ignore[arg-type]


def run(model: LoadedModel, prompt: str = "a cat dance", negative: str | None = None) -> np.ndarray:
    return generate(
        model, SMALL, prompt=prompt, negative_prompt=negative or DEFAULT_NEGATIVE_PROMPT, seed=3
    )


def test_repeated_prompts_do_not_rerun_the_text_encoder() -> None:
    model = load()
    assert model.prompts is not None and model.prompts.max_entries == 32
    calls = count_calls(model.pipe.text_encoder)
    run(model)
    assert calls[0] == 1  # the prompt; the default negative was encoded once, at load
    run(model)
    assert calls[0] == 1  # nothing encoded again
    run(model, negative="blurry")
    assert calls[0] == 2  # a client's own negative prompt is cached like any prompt
    run(model, prompt="a dog walks", negative="blurry")
    assert calls[0] == 3
    assert (model.prompts.hits, model.prompts.misses) == (5, 3)


def test_cache_off_encodes_every_time_and_gives_the_same_video() -> None:
    cached = load()
    off = load(prompt_cache_size=0)
    assert off.prompts is None
    calls = count_calls(off.pipe.text_encoder)
    first = run(off)
    run(off)
    assert calls[0] == 4  # prompt and negative, twice
    np.testing.assert_array_equal(first, run(cached))
    np.testing.assert_array_equal(first, run(cached))  # from the cache this time


def test_without_cfg_the_negative_is_never_encoded(tiny_lora: Path) -> None:
    fast = load(preset="fast", distill_lora=tiny_lora)
    calls = count_calls(fast.pipe.text_encoder)
    run(fast)
    run(fast)
    assert calls[0] == 1  # the prompt once; guidance 1 reads no negative


def test_least_recently_used_goes_first_and_length_is_part_of_the_key() -> None:
    pipe = build_tiny_pipeline()
    cache = PromptCache(pipe, model="tiny", max_entries=2)
    calls = count_calls(pipe.text_encoder)
    cache.embeds("a cat", 16)
    cache.embeds("a dog", 16)
    cache.embeds("a cat", 16)  # hit: "a dog" is now the least recently used
    cache.embeds("a boy", 16)  # evicts "a dog"
    assert (calls[0], len(cache)) == (3, 2)
    cache.embeds("a cat", 16)
    assert calls[0] == 3
    cache.embeds("a dog", 16)
    assert calls[0] == 4
    longer = cache.embeds("a dog", 24)  # another padding length: another entry
    assert calls[0] == 5 and longer.shape[1] == 24
    torch.testing.assert_close(
        cache.embeds("a dog", 16), pipe.encode_prompt("a dog", do_classifier_free_guidance=False,
                                                      max_sequence_length=16)[0]
    )  # fmt: skip
