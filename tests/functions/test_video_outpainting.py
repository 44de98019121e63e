from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from PIL import Image

from tests.functions.fakes import PROFILE, FakeMedia, arr, clip, run_tiny, same
from tests.support.fake_annotators import fake_annotators
from tests.support.wire import raises_wire
from vace_server import errors
from vace_server.functions import build_inputs, video_outpainting
from vace_server.media.clip import FrameList
from vace_server.model_inputs import ModelProfile, VaceInputs
from vace_server.tasks.spec import Outpaint, TaskSpec, VaceFunction


def spec(**scales: float) -> TaskSpec:
    return TaskSpec(
        function=VaceFunction.VIDEO_OUTPAINTING,
        prompt="p",
        seed=1,
        video_url="v",
        outpaint=Outpaint(**scales),
    )


def area(pixels: int) -> ModelProfile:
    return dataclasses.replace(PROFILE, generation_area=pixels)


def check_placement(
    inputs: VaceInputs, source: FrameList, box: tuple[int, int, int, int], indices: list[int]
) -> None:
    """Frame k: the source frame indices[k] resized into box (x, y, w, h); gray 128 and mask
    255 everywhere else, mask 0 on the box."""
    x, y, w, h = box
    assert inputs.video is not None and inputs.mask is not None
    assert len(inputs.video) == len(inputs.mask) == len(indices) == inputs.num_frames
    expected_mask = np.full((inputs.height, inputs.width), 255)
    expected_mask[y : y + h, x : x + w] = 0
    outside = expected_mask == 255
    for frame, mask, i in zip(inputs.video, inputs.mask, indices, strict=True):
        assert mask.mode == "L" and np.array_equal(arr(mask), expected_mask)
        f = arr(frame)
        assert (f[outside] == 128).all()
        pasted = source.frames[i].resize((w, h), Image.Resampling.BICUBIC)
        assert np.array_equal(f[y : y + h, x : x + w], arr(pasted))


def test_asymmetric_scales_exact_geometry() -> None:
    # 64x64, left 2.0, right 1.0, top 1.0, bottom 1.5:
    # canvas 32*(2+1) x 32*(1+1.5) = 96x80, frame at ((2-1)*32, 0) = (32, 0), untouched size
    source = clip(17, size=(64, 64))
    media = FakeMedia(videos={"v": source})
    inputs = video_outpainting.build(
        spec(left=2.0, right=1.0, top=1.0, bottom=1.5), media, area(96 * 80)
    )
    assert (inputs.width, inputs.height) == (96, 80)
    assert inputs.output_size == (96, 80)
    check_placement(inputs, source, (32, 0, 64, 64), list(range(17)))
    assert inputs.video is not None
    assert same(inputs.video[5].crop((32, 0, 96, 64)), source.frames[5])  # pixel-exact paste
    assert inputs.output_seconds == 17 / 16 and inputs.reference_images is None
    assert media.calls == [("video", "v", "input.video_url", 5.0)]


def test_other_asymmetric_scales() -> None:
    # 64x64, left 1.5, right 1.0, top 1.0, bottom 2.0 -> 80x96, frame at (16, 0)
    source = clip(5, size=(64, 64))
    inputs = video_outpainting.build(
        spec(left=1.5, bottom=2.0), FakeMedia(videos={"v": source}), area(80 * 96)
    )
    assert (inputs.width, inputs.height) == inputs.output_size == (80, 96)
    check_placement(inputs, source, (16, 0, 64, 64), list(range(5)))


def test_symmetric_scales_centre_the_frame() -> None:
    source = clip(5, size=(32, 32))
    inputs = video_outpainting.build(
        spec(left=1.5, right=1.5, top=1.5, bottom=1.5),
        FakeMedia(videos={"v": source}),
        area(48 * 48),
    )
    assert inputs.output_size == (48, 48)
    check_placement(inputs, source, (8, 8, 32, 32), list(range(5)))


def test_canvas_fitted_into_the_model_area_scales_frame_and_offset() -> None:
    # 64x48, left 2.0, bottom 1.5 -> canvas 96x60 (delivered), fitted to 80x48 in 16-px cells:
    # x factor 5/6, y factor 0.8 -> frame edges x 26.7..80, y 0..38.4 -> 53x38 at (27, 0)
    source = clip(9, fps=32, size=(64, 48))
    inputs = video_outpainting.build(
        spec(left=2.0, bottom=1.5), FakeMedia(videos={"v": source}), area(96 * 64)
    )
    assert inputs.output_size == (96, 60)
    assert (inputs.width, inputs.height) == (80, 48)
    check_placement(inputs, source, (27, 0, 53, 38), [0, 2, 4, 6, 8])  # 16 fps sampling
    assert inputs.output_seconds == 9 / 32


def test_large_canvas_follows_the_720p_rule() -> None:
    frame = Image.new("RGB", (1280, 720), (200, 10, 10))
    source = FrameList([frame] * 5, 16)
    inputs = video_outpainting.build(
        spec(left=1.5, right=1.5, top=1.5, bottom=1.5), FakeMedia(videos={"v": source}), PROFILE
    )
    assert inputs.output_size == (1280, 720)  # canvas 1920x1080 scaled down
    assert (inputs.width, inputs.height) == (80, 48)
    # pad 320/180 of 1920/1080 -> x 13..66, y 8..39 at 80x48
    assert inputs.mask is not None
    ys, xs = np.nonzero(arr(inputs.mask[0]) == 0)
    assert (xs.min(), xs.max(), ys.min(), ys.max()) == (13, 66, 8, 39)


@pytest.mark.parametrize(
    ("size", "scales", "expected"),
    [
        ((50, 30), {"left": 1.1}, (52, 30)),  # 52.5 -> 52
        ((45, 33), {}, (44, 32)),  # the canvas is computed: rounded down to even
        ((64, 48), {"top": 1.25, "bottom": 1.25}, (64, 60)),
    ],
)
def test_output_size_is_the_canvas_rounded_down_to_even(
    size: tuple[int, int], scales: dict[str, float], expected: tuple[int, int]
) -> None:
    inputs = video_outpainting.build(
        spec(**scales), FakeMedia(videos={"v": clip(5, size=size)}), PROFILE
    )
    assert inputs.output_size == expected


def test_place_never_lets_the_frame_leave_the_canvas() -> None:
    for w, h in [(50, 30), (97, 61), (333, 211)]:
        for left in (1.0, 1.3, 1.77, 2.0):
            for right in (1.0, 1.5, 2.0):
                p = video_outpainting.place(
                    w, h, Outpaint(left=left, right=right, top=left), PROFILE
                )
                x, y, fw, fh = p.frame_box
                assert x >= 0 and x + fw <= p.size[0] and y >= 0 and y + fh <= p.size[1]
                if right == 1.0:
                    assert x + fw == p.size[0]  # no extension: flush with the right edge


@pytest.mark.parametrize("side", ["left", "right", "top", "bottom"])
def test_scales_outside_1_2_are_refused(side: str) -> None:
    media = FakeMedia(videos={"v": clip(5)})
    with raises_wire(errors.InvalidParameter, match=rf"parameters\.{side}_scale"):
        video_outpainting.build(spec(**{side: 2.5}), media, PROFILE)


def test_video_required() -> None:
    task = dataclasses.replace(spec(), video_url=None)
    with raises_wire(errors.InvalidParameter, match=r"Field required: input\.video_url"):
        video_outpainting.build(task, FakeMedia(), PROFILE)


@pytest.mark.usefixtures("one_torch_thread")
def test_end_to_end_through_the_tiny_pipeline() -> None:
    media = FakeMedia(videos={"v": clip(17, size=(48, 32))})
    task = spec(left=2.0, right=1.0, top=1.0, bottom=1.5)
    inputs = build_inputs(task, media, PROFILE, annotators=fake_annotators())
    assert inputs.num_frames == 17
    frames = run_tiny(inputs)
    assert frames.shape == (17, inputs.height, inputs.width, 3)
    assert frames.min() >= 0.0 and frames.max() <= 1.0
