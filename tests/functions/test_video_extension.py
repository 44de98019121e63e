from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest
from PIL import Image, ImageOps

from tests.functions.fakes import PROFILE, FakeMedia, arr, clip, invert, noise, run_tiny, same
from tests.support.fake_annotators import fake_annotators
from tests.support.wire import raises_wire, wire_message
from vace_server import errors
from vace_server.functions import build_inputs, common, video_extension
from vace_server.model_inputs import VaceInputs, fit_area
from vace_server.tasks.spec import Control, TaskSpec, VaceFunction

SIZE = (64, 48)  # the generation size of a 64x48 input at this area: no resize


def spec(**kw: object) -> TaskSpec:
    base: dict[str, object] = dict(function=VaceFunction.VIDEO_EXTENSION, prompt="p", seed=1)
    base.update(kw)
    return TaskSpec(**base)  # type: ignore[arg-type]


def is_gray(image: Image.Image) -> bool:
    return image.size == SIZE and bool((arr(image) == 128).all())


def mask_values(inputs: VaceInputs) -> list[int]:
    """One value per frame; asserts every mask is flat, "L" and at the generation size."""
    assert inputs.mask is not None
    out = []
    for m in inputs.mask:
        a = arr(m)
        assert m.mode == "L" and m.size == (inputs.width, inputs.height)
        assert (a == a.flat[0]).all()
        out.append(int(a.flat[0]))
    return out


def check_common(inputs: VaceInputs, head: int, tail: int) -> None:
    n = PROFILE.num_frames
    assert inputs.num_frames == n and inputs.video is not None and len(inputs.video) == n
    assert mask_values(inputs) == [0] * head + [255] * (n - head - tail) + [0] * tail
    assert inputs.output_seconds == 1.0  # (17 - 1) / 16: the whole output, given part included
    assert inputs.reference_images is None


# ------------------------------------------------------------------ placement
def test_first_frame() -> None:
    first = noise(SIZE, 1)
    media = FakeMedia(images={"f": first})
    inputs = video_extension.build(spec(first_frame_url="f"), media, PROFILE, fake_annotators())
    check_common(inputs, head=1, tail=0)
    assert inputs.video is not None
    assert same(inputs.video[0], first)
    assert all(is_gray(f) for f in inputs.video[1:])
    assert inputs.output_size == SIZE and (inputs.width, inputs.height) == SIZE
    assert media.calls == [("image", "f", "input.first_frame_url", None)]


def test_last_frame() -> None:
    last = noise(SIZE, 2)
    inputs = video_extension.build(
        spec(last_frame_url="l"), FakeMedia(images={"l": last}), PROFILE, fake_annotators()
    )
    check_common(inputs, head=0, tail=1)
    assert inputs.video is not None
    assert same(inputs.video[-1], last) and all(is_gray(f) for f in inputs.video[:-1])


def test_first_and_last_frame_make_exactly_n_frames() -> None:
    first, last = noise(SIZE, 1), noise(SIZE, 2)
    media = FakeMedia(images={"f": first, "l": last})
    inputs = video_extension.build(
        spec(first_frame_url="f", last_frame_url="l"), media, PROFILE, fake_annotators()
    )
    check_common(inputs, head=1, tail=1)  # 17, not VACE's 18
    assert inputs.video is not None
    assert same(inputs.video[0], first) and same(inputs.video[-1], last)


def test_first_clip_and_last_frame() -> None:
    first_clip, last = clip(4, fps=16, seed=1), noise(SIZE, 3)
    media = FakeMedia(videos={"c": first_clip}, images={"l": last})
    task = spec(first_clip_url="c", last_frame_url="l")
    inputs = video_extension.build(task, media, PROFILE, fake_annotators())
    check_common(inputs, head=4, tail=1)
    assert inputs.video is not None
    assert all(same(inputs.video[i], first_clip.frames[i]) for i in range(4))
    assert all(is_gray(f) for f in inputs.video[4:16])
    assert same(inputs.video[16], last)
    assert ("video", "c", "input.first_clip_url", 3.0) in media.calls


def test_last_clip_is_resampled_to_16fps() -> None:
    last_clip = clip(8, fps=32, seed=2)  # 0.25 s -> 5 frames: source 0, 2, 4, 5, 7
    inputs = video_extension.build(
        spec(last_clip_url="c"), FakeMedia(videos={"c": last_clip}), PROFILE, fake_annotators()
    )
    check_common(inputs, head=0, tail=5)
    assert inputs.video is not None
    tail = inputs.video[12:]
    assert all(same(f, last_clip.frames[i]) for f, i in zip(tail, [0, 2, 4, 5, 7], strict=True))


def test_every_input_together() -> None:
    first, last = noise(SIZE, 1), noise(SIZE, 2)
    first_clip, last_clip = clip(3, seed=3), clip(2, seed=4)
    media = FakeMedia(videos={"fc": first_clip, "lc": last_clip}, images={"f": first, "l": last})
    task = spec(first_frame_url="f", last_frame_url="l", first_clip_url="fc", last_clip_url="lc")
    inputs = video_extension.build(task, media, PROFILE, fake_annotators())
    check_common(inputs, head=4, tail=3)
    assert inputs.video is not None
    expected_head = [first, *first_clip.frames]
    expected_tail = [*last_clip.frames, last]
    assert all(same(a, b) for a, b in zip(inputs.video[:4], expected_head, strict=True))
    assert all(same(a, b) for a, b in zip(inputs.video[-3:], expected_tail, strict=True))
    assert all(is_gray(f) for f in inputs.video[4:-3])


# ------------------------------------------------------------------ sizes
def test_size_from_the_first_clip_others_fitted_on_white() -> None:
    # VACE's align_frames: material of another size is fitted inside the reference's size
    # (area interpolation), centred on white. Portrait 48x64 in landscape 64x48: 36x48, bars
    # of 14 px left and right.
    first = noise((48, 64), 1)
    media = FakeMedia(videos={"c": clip(2, size=SIZE)}, images={"f": first})
    task = spec(first_frame_url="f", first_clip_url="c")
    inputs = video_extension.build(task, media, PROFILE, fake_annotators())
    assert inputs.output_size == SIZE and (inputs.width, inputs.height) == SIZE
    assert inputs.video is not None
    a = arr(inputs.video[0])
    assert (a[:, :14] == 255).all() and (a[:, 50:] == 255).all()
    inner = cv2.resize(np.asarray(first), (36, 48), interpolation=cv2.INTER_AREA)
    assert np.array_equal(a[:, 14:50], inner)
    assert same(inputs.video[1], media.videos["c"].frames[0])  # the reference itself: as is


def test_fitted_material_is_then_cover_resized_to_the_generation_size() -> None:
    # Reference 96x48 (2:1) generates at 80x48 here (64*64 area budget): every frame, fitted
    # or not, is then cover-resized to it like the pipeline's own resize-and-crop.
    last = noise((48, 48), 2)
    media = FakeMedia(videos={"c": clip(2, size=(96, 48))}, images={"l": last})
    inputs = video_extension.build(spec(first_clip_url="c", last_frame_url="l"), media, PROFILE,
                                   fake_annotators())  # fmt: skip
    size = (inputs.width, inputs.height)
    assert inputs.video is not None and size != (96, 48)
    fitted = common.fit_on_white(last, (96, 48))
    assert same(inputs.video[-1], ImageOps.fit(fitted, size, method=Image.Resampling.BICUBIC))


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ({"last_clip_url": "c", "first_frame_url": "f"}, (32, 32)),  # last clip before frames
        ({"first_frame_url": "f", "last_frame_url": "l"}, (48, 64)),  # first frame before last
        ({"last_frame_url": "l"}, (1280, 720)),  # > 720P: scaled down
    ],
)
def test_reference_input_order_and_720p_rule(
    given: dict[str, str], expected: tuple[int, int]
) -> None:
    media = FakeMedia(
        videos={"c": clip(2, size=(32, 32))},
        images={"f": noise((48, 64), 1), "l": Image.new("RGB", (1920, 1080), (9, 99, 199))},
    )
    inputs = video_extension.build(spec(**given), media, PROFILE, fake_annotators())
    assert inputs.output_size == expected
    assert (inputs.width, inputs.height) == fit_area(*expected, PROFILE.generation_area)
    assert inputs.video is not None and all(
        f.size == (inputs.width, inputs.height) for f in inputs.video
    )


# ------------------------------------------------------------------ failures
def test_clips_must_share_a_frame_rate() -> None:
    media = FakeMedia(videos={"a": clip(4, fps=16), "b": clip(4, fps=24)})
    with pytest.raises(errors.InvalidFile) as info:
        video_extension.build(
            spec(first_clip_url="a", last_clip_url="b"), media, PROFILE, fake_annotators()
        )
    assert info.value.code == "InvalidFile.FPS"
    msg = wire_message(info.value.message)
    assert "input.first_clip_url (16 fps)" in msg and "input.last_clip_url (24 fps)" in msg


def test_clips_together_at_most_3_seconds() -> None:
    small = (16, 16)
    media = FakeMedia(videos={"a": clip(32, size=small), "b": clip(17, size=small)})
    with pytest.raises(errors.InvalidFile) as info:
        video_extension.build(
            spec(first_clip_url="a", last_clip_url="b"), media, PROFILE, fake_annotators()
        )
    assert info.value.code == "InvalidFile.Duration"
    assert "input.first_clip_url and input.last_clip_url last 3.06 s" in wire_message(
        info.value.message
    )
    # exactly 3 s together is fine (on the 81-frame model, where it leaves room to generate)
    media = FakeMedia(videos={"a": clip(32, size=small), "b": clip(16, size=small)})
    profile81 = dataclasses.replace(PROFILE, num_frames=81)
    inputs = video_extension.build(
        spec(first_clip_url="a", last_clip_url="b"), media, profile81, fake_annotators()
    )
    assert inputs.num_frames == 81 and mask_values(inputs).count(255) == 81 - 32 - 16


def test_a_single_clip_is_cut_to_3_seconds() -> None:
    source = clip(64, size=(16, 16))  # 4 s
    profile81 = dataclasses.replace(PROFILE, num_frames=81)
    media = FakeMedia(videos={"a": source})
    inputs = video_extension.build(spec(first_clip_url="a"), media, profile81, fake_annotators())
    assert media.calls == [("video", "a", "input.first_clip_url", 3.0)]
    # 0..3 s, the frame at 3 s included: 49 frames at 16 fps
    assert mask_values(inputs) == [0] * 49 + [255] * 32
    assert inputs.video is not None and same(inputs.video[48], source.frames[48])
    assert inputs.output_seconds == 5.0


def test_material_must_leave_a_frame_to_generate() -> None:
    first = noise(SIZE, 1)
    media = FakeMedia(videos={"c15": clip(15), "c16": clip(16)}, images={"f": first})
    ok = video_extension.build(
        spec(first_frame_url="f", first_clip_url="c15"), media, PROFILE, fake_annotators()
    )
    check_common(ok, head=16, tail=0)
    with pytest.raises(errors.InvalidFile) as info:
        video_extension.build(
            spec(first_frame_url="f", first_clip_url="c16"), media, PROFILE, fake_annotators()
        )
    assert info.value.code == "InvalidFile.Duration"
    assert "input.first_clip_url, input.first_frame_url" in wire_message(info.value.message)
    assert "17 frames" in wire_message(info.value.message)


def test_refuses_what_the_api_should_have_refused() -> None:
    media = FakeMedia(videos={"mv": clip(5)}, images={"f": noise(SIZE, 1)})
    with raises_wire(errors.InvalidParameter, match=r"Field required: input\.first_clip_url"):
        video_extension.build(spec(), media, PROFILE, fake_annotators())
    with raises_wire(errors.InvalidParameter, match=r"parameters\.control_condition"):
        video_extension.build(
            spec(first_frame_url="f", video_url="mv"), media, PROFILE, fake_annotators()
        )
    assert media.calls == []


# ------------------------------------------------------------------ motion reference
def test_motion_reference_renderings_fill_the_gap() -> None:
    first_clip, motion = clip(4, seed=1), clip(9, seed=2)
    media = FakeMedia(videos={"c": first_clip, "mv": motion})
    task = spec(first_clip_url="c", video_url="mv", control=Control.DEPTH)
    inputs = video_extension.build(task, media, PROFILE, fake_annotators())
    check_common(inputs, head=4, tail=0)
    assert inputs.video is not None
    # the 9-frame reference resampled to 17 frames; the gap shows positions 4..16
    idx = np.linspace(0, 8, 17).round().astype(int)
    for pos in range(4, 17):
        assert same(inputs.video[pos], invert(motion.frames[idx[pos]]))
    assert all(same(inputs.video[i], first_clip.frames[i]) for i in range(4))
    assert ("video", "mv", "input.video_url", 5.0) in media.calls


def test_control_without_motion_reference_is_ignored() -> None:
    media = FakeMedia(images={"f": noise(SIZE, 1)})
    task = spec(first_frame_url="f", control=Control.DEPTH)
    inputs = video_extension.build(task, media, PROFILE, fake_annotators(with_models=False))
    assert inputs.video is not None and all(is_gray(f) for f in inputs.video[1:])


def test_motion_reference_must_match_the_clips_fps() -> None:
    media = FakeMedia(videos={"c": clip(4, fps=16), "mv": clip(9, fps=30)})
    task = spec(first_clip_url="c", video_url="mv", control=Control.POSE_BODY_FACE)
    with pytest.raises(errors.InvalidFile) as info:
        video_extension.build(task, media, PROFILE, fake_annotators())
    assert info.value.code == "InvalidFile.FPS"
    assert "input.video_url (30 fps)" in wire_message(info.value.message)
    assert "input.first_clip_url (16 fps)" in wire_message(info.value.message)


def test_motion_reference_must_match_the_frames_resolution() -> None:
    media = FakeMedia(
        videos={"c": clip(4), "mv": clip(9)},
        images={"l": noise((48, 64), 1)},
    )
    task = spec(first_clip_url="c", last_frame_url="l", video_url="mv", control=Control.DEPTH)
    with pytest.raises(errors.InvalidParameter) as info:
        video_extension.build(task, media, PROFILE, fake_annotators())
    assert wire_message(info.value.message).startswith("The size is not match")
    assert "input.video_url is 64x48" in wire_message(info.value.message)
    assert "input.last_frame_url is 48x64" in wire_message(info.value.message)


def test_motion_reference_needs_its_annotator_before_any_download() -> None:
    media = FakeMedia(videos={"c": clip(4), "mv": clip(9)})
    task = spec(first_clip_url="c", video_url="mv", control=Control.DEPTH)
    with pytest.raises(errors.AnnotatorUnavailable, match="Depth Anything V2"):
        video_extension.build(task, media, PROFILE, fake_annotators(with_models=False))
    assert media.calls == []


# ------------------------------------------------------------------ end to end
@pytest.mark.usefixtures("one_torch_thread")
def test_end_to_end_through_the_tiny_pipeline() -> None:
    media = FakeMedia(videos={"c": clip(4), "mv": clip(9, seed=5)}, images={"l": noise(SIZE, 7)})
    task = spec(first_clip_url="c", last_frame_url="l", video_url="mv", control=Control.DEPTH)
    inputs = build_inputs(task, media, PROFILE, annotators=fake_annotators())
    frames = run_tiny(inputs)
    assert frames.shape == (17, 48, 64, 3)
    assert frames.min() >= 0.0 and frames.max() <= 1.0
