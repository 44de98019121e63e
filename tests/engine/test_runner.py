from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from vace_server.engine.loader import LoadedModel, load_model
from vace_server.engine.runner import generate
from vace_server.model_inputs import VaceInputs
from vace_server.settings import Settings

W, H, N = 32, 16, 17


@pytest.fixture(scope="module")
def model() -> LoadedModel:
    return load_model(Settings(model="tiny", num_frames=N, generation_area=W * H))


def control_inputs(**overrides: Any) -> VaceInputs:
    """Inpainting-shaped inputs: video with a gray region, mask 255 there, one reference."""
    frames = [Image.new("RGB", (W, H), (20 * (i % 10), 90, 200)) for i in range(N)]
    mask = Image.new("L", (W, H), 0)
    mask.paste(255, (8, 4, 24, 12))
    video = [Image.composite(Image.new("RGB", (W, H), (128,) * 3), f, mask) for f in frames]
    kwargs: dict[str, Any] = dict(
        width=W, height=H, num_frames=N, output_size=(64, 32), output_seconds=1.0,
        video=video, mask=[mask] * N, reference_images=[Image.new("RGB", (20, 30), "red")],
    )  # fmt: skip
    kwargs.update(overrides)
    return VaceInputs(**kwargs)


def run(model: LoadedModel, inputs: VaceInputs, seed: int = 7, **kwargs: Any) -> np.ndarray:
    return generate(
        model, inputs, prompt="a red cat", negative_prompt="negative", seed=seed, **kwargs
    )


def test_shape_dtype_range(model: LoadedModel) -> None:
    frames = run(model, control_inputs())
    assert frames.shape == (N, H, W, 3)
    assert frames.dtype == np.float32
    assert frames.min() >= 0.0 and frames.max() <= 1.0


def test_text_only_inputs(model: LoadedModel) -> None:
    inputs = VaceInputs(width=16, height=32, num_frames=9, output_size=(16, 32), output_seconds=0.5)
    assert run(model, inputs).shape == (9, 32, 16, 3)


def test_same_seed_same_video_different_seed_different(model: LoadedModel) -> None:
    inputs = control_inputs()
    first = run(model, inputs, seed=11)
    torch.manual_seed(999)  # the global RNG must not matter
    np.testing.assert_array_equal(run(model, inputs, seed=11), first)
    assert np.abs(run(model, inputs, seed=12) - first).max() > 1e-3


def test_same_seed_same_video_across_fresh_loads(model: LoadedModel) -> None:
    inputs = control_inputs()
    other = load_model(Settings(model="tiny", num_frames=N, generation_area=W * H))
    np.testing.assert_array_equal(run(other, inputs), run(model, inputs))


def test_conditioning_scale_is_passed(model: LoadedModel) -> None:
    inputs = control_inputs()
    weak = dataclasses.replace(inputs, conditioning_scale=0.0)
    assert np.abs(run(model, weak) - run(model, inputs)).max() > 1e-4


class MustNotRun:
    def __call__(self, **kwargs: Any) -> Any:
        raise AssertionError("the pipeline ran on misaligned inputs")


@pytest.mark.parametrize(
    "overrides",
    [
        {"video": [Image.new("RGB", (W, H))] * 9, "mask": None},  # too few frames
        {"mask": [Image.new("L", (W, H))] * 9},  # mask/video lengths differ
        {"video": [Image.new("RGB", (W + 16, H))] * N, "mask": None},  # wrong frame size
        {"width": 40},  # not a multiple of 16
        {"num_frames": 16, "video": None, "mask": None},  # not 4n+1
        {"video": None},  # mask without video
    ],
)
def test_misaligned_inputs_raise_before_running(
    model: LoadedModel, overrides: dict[str, Any]
) -> None:
    guarded = dataclasses.replace(model, pipe=MustNotRun())
    with pytest.raises(ValueError):
        run(guarded, control_inputs(**overrides))


def test_on_step_reports_each_step(model: LoadedModel) -> None:
    calls: list[tuple[int, int]] = []
    run(model, control_inputs(), on_step=lambda done, total: calls.append((done, total)))
    assert calls == [(1, 2), (2, 2)]
    three = dataclasses.replace(model, num_inference_steps=3)
    calls.clear()
    run(three, control_inputs(), on_step=lambda done, total: calls.append((done, total)))
    assert calls == [(1, 3), (2, 3), (3, 3)]


class Cancelled(Exception):
    pass


def test_raising_from_on_step_aborts_before_decoding(
    model: LoadedModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    decodes: list[int] = []
    original = model.pipe.vae.decode

    def counting_decode(*args: Any, **kwargs: Any) -> Any:
        decodes.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(model.pipe.vae, "decode", counting_decode)
    calls: list[int] = []

    def cancel(done: int, total: int) -> None:
        calls.append(done)
        raise Cancelled

    with pytest.raises(Cancelled):
        run(model, control_inputs(), on_step=cancel)
    assert calls == [1]
    assert decodes == []
    run(model, control_inputs())  # the pipeline is still usable afterwards
    assert decodes == [1]
