"""Timing the parts of a pipeline call on the tiny model: the text encoder's passes and the VAE
calls are recorded, and the pipeline is left as it was."""

from __future__ import annotations

import pytest

from tests.engine.test_runner import control_inputs, model, run  # noqa: F401  (the fixture)
from vace_server.engine.loader import LoadedModel


@pytest.fixture(autouse=True)
def _one_torch_thread(one_torch_thread: None) -> None:
    """See tests/conftest.py `one_torch_thread`."""


def test_parts_of_one_call_are_recorded_and_the_hooks_removed(model: LoadedModel) -> None:  # noqa: F811
    parts: list[tuple[str, float]] = []
    run(model, control_inputs(), on_part=lambda part, s: parts.append((part, s)))
    names = [p for p, _ in parts]
    # Prompt and negative prompt (guidance > 1); conditioning frames encoded; one decode.
    assert names.count("prompt_encode") == 2
    assert names.count("vae_decode") == 1
    assert "vae_encode" in names
    assert all(seconds >= 0 for _, seconds in parts)
    pipe = model.pipe
    assert "decode" not in pipe.vae.__dict__ and "encode" not in pipe.vae.__dict__
    assert not pipe.text_encoder._forward_hooks and not pipe.text_encoder._forward_pre_hooks


def test_without_a_recorder_nothing_is_hooked(model: LoadedModel) -> None:  # noqa: F811
    seen: list[object] = []
    pipe = model.pipe
    original = pipe.text_encoder.register_forward_hook
    pipe.text_encoder.register_forward_hook = lambda *a, **k: seen.append(a)  # type: ignore[method-assign]
    try:
        run(model, control_inputs())
    finally:
        del pipe.text_encoder.register_forward_hook
    assert seen == [] and original is not None
