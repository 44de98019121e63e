"""Input lengths across the video functions: the minimum each accepts, the 81-frame rule for
5 s inputs, and that only the sampled frames are read (the mask video with the video's own
indices)."""

from __future__ import annotations

import dataclasses

import pytest

from tests.functions.fakes import PROFILE, FakeMedia, box_mask, clip, noise
from tests.support.fake_annotators import fake_annotators
from tests.support.wire import wire_message
from vace_server import errors
from vace_server.functions import build_inputs
from vace_server.tasks.spec import Control, MaskType, TaskSpec, VaceFunction

SIZE = (64, 48)
PROFILE81 = dataclasses.replace(PROFILE, num_frames=81)


def _spec(function: VaceFunction, **kw: object) -> TaskSpec:
    base: dict[str, object] = dict(function=function, prompt="p", seed=1)
    if function is VaceFunction.VIDEO_REPAINTING:
        base.update(video_url="v", control=Control.DEPTH)
    elif function is VaceFunction.VIDEO_EDIT:
        base.update(video_url="v", mask_image_url="m", mask_type=MaskType.FIXED, size=SIZE)
    elif function is VaceFunction.VIDEO_OUTPAINTING:
        base.update(video_url="v")
    else:  # the motion reference of an extension
        base.update(first_frame_url="f", video_url="v", control=Control.DEPTH)
    base.update(kw)
    return TaskSpec(**base)  # type: ignore[arg-type]


def _media(video_frames: int, fps: float = 16) -> FakeMedia:
    return FakeMedia(
        videos={"v": clip(video_frames, fps=fps, size=SIZE)},
        images={"f": noise(SIZE, 9)},
        masks={"m": box_mask(SIZE, (8, 8, 24, 24))},
    )


VIDEO_FUNCTIONS = [
    VaceFunction.VIDEO_REPAINTING,
    VaceFunction.VIDEO_EDIT,
    VaceFunction.VIDEO_OUTPAINTING,
    VaceFunction.VIDEO_EXTENSION,
]


@pytest.mark.parametrize("function", VIDEO_FUNCTIONS, ids=lambda f: f.value)
@pytest.mark.parametrize(("frames", "fps"), [(1, 16), (4, 16), (6, 30)])
def test_too_short_a_video_is_refused_before_reading_a_frame(
    function: VaceFunction, frames: int, fps: float
) -> None:
    media = _media(frames, fps)
    with pytest.raises(errors.InvalidFile) as info:
        build_inputs(_spec(function), media, PROFILE, annotators=fake_annotators())
    assert info.value.code == "InvalidFile.Duration"
    assert "input.video_url is too short" in wire_message(info.value.message)
    assert "at least 5" in wire_message(info.value.message)
    assert [url for url, _ in media.reads] == []


@pytest.mark.parametrize("function", VIDEO_FUNCTIONS, ids=lambda f: f.value)
@pytest.mark.parametrize(("frames", "fps"), [(5, 16), (7, 30)])
def test_the_shortest_video_is_accepted(function: VaceFunction, frames: int, fps: float) -> None:
    inputs = build_inputs(
        _spec(function), _media(frames, fps), PROFILE, annotators=fake_annotators()
    )
    assert inputs.num_frames == (5 if function is not VaceFunction.VIDEO_EXTENSION else 17)


@pytest.mark.parametrize("field", ["first_clip_url", "last_clip_url"])
def test_an_extension_clip_of_one_frame_is_material(field: str) -> None:
    media = FakeMedia(videos={"c": clip(1, size=SIZE)})
    first, last = ("c", None) if field == "first_clip_url" else (None, "c")
    task = TaskSpec(
        function=VaceFunction.VIDEO_EXTENSION,
        prompt="p",
        seed=1,
        first_clip_url=first,
        last_clip_url=last,
    )
    inputs = build_inputs(task, media, PROFILE, annotators=fake_annotators())
    assert inputs.mask is not None and inputs.num_frames == 17
    kept = [k for k, m in enumerate(inputs.mask) if m.getpixel((0, 0)) == 0]
    assert kept == ([0] if field == "first_clip_url" else [16])


@pytest.mark.parametrize(
    "function",
    [VaceFunction.VIDEO_REPAINTING, VaceFunction.VIDEO_EDIT, VaceFunction.VIDEO_OUTPAINTING],
    ids=lambda f: f.value,
)
@pytest.mark.parametrize(
    ("frames", "fps", "expected", "distinct"),
    [
        (81, 16, 81, 81),  # Wan's own 81-frame output fed back in: all kept
        (96, 16, 81, 81),  # 6 s at 16 fps: 0 .. 5 s
        (150, 30, 81, 81),  # 5 s at 30 fps
        (180, 30, 81, 81),  # 6 s at 30 fps
        (80, 16, 81, 80),  # exactly 5 s at 16 fps: no frame at 5 s, the last one held
    ],
)
def test_five_seconds_give_the_model_81_frames(
    function: VaceFunction, frames: int, fps: float, expected: int, distinct: int
) -> None:
    media = _media(frames, fps)
    inputs = build_inputs(_spec(function), media, PROFILE81, annotators=fake_annotators())
    assert inputs.num_frames == expected
    assert inputs.output_seconds == pytest.approx(min(frames / fps, 5.0))
    ((url, indices),) = media.reads  # one read, of exactly the sampled frames
    assert url == "v" and len(indices) == expected and len(set(indices)) == distinct


def test_the_mask_video_is_read_with_the_videos_indices() -> None:
    media = FakeMedia(
        videos={"v": clip(150, fps=30, size=SIZE), "mv": clip(150, fps=30, size=SIZE, seed=4)}
    )
    task = _spec(VaceFunction.VIDEO_EDIT, mask_image_url=None, mask_video_url="mv")
    inputs = build_inputs(task, media, PROFILE81, annotators=fake_annotators())
    assert inputs.num_frames == 81
    (video_read, mask_read) = media.reads
    assert video_read[0] == "v" and mask_read[0] == "mv"
    assert mask_read[1] == video_read[1] and len(video_read[1]) == 81


def test_an_extension_motion_reference_reads_only_the_gap() -> None:
    media = _media(96)
    inputs = build_inputs(
        _spec(VaceFunction.VIDEO_EXTENSION), media, PROFILE81, annotators=fake_annotators()
    )
    assert inputs.num_frames == 81
    ((url, indices),) = media.reads
    assert url == "v" and len(indices) == 80  # the gap after the first frame
