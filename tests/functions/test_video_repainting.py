from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from PIL import Image

from tests.functions.fakes import (
    PROFILE,
    FakeMedia,
    RecordingAnnotator,
    clip,
    invert,
    noise,
    run_tiny,
    same,
)
from tests.support.fake_annotators import fake_annotators
from tests.support.wire import raises_wire, wire_message
from vace_server import errors
from vace_server.annotators.base import AnnotatorSet
from vace_server.functions import build_inputs, video_repainting
from vace_server.media.clip import FrameList
from vace_server.tasks.spec import Control, Reference, ReferenceRole, TaskSpec, VaceFunction


def spec(**kw: object) -> TaskSpec:
    base: dict[str, object] = dict(
        function=VaceFunction.VIDEO_REPAINTING,
        prompt="a cat dance",
        seed=1,
        video_url="v",
        control=Control.DEPTH,
    )
    base.update(kw)
    return TaskSpec(**base)  # type: ignore[arg-type]


def recording_set() -> tuple[AnnotatorSet, dict[str, RecordingAnnotator]]:
    rec = {n: RecordingAnnotator(n) for n in ("scribble", "depth", "pose_body", "pose_body_face")}
    base = fake_annotators()
    return dataclasses.replace(base, **rec), rec  # type: ignore[arg-type]


def test_control_video_from_every_kept_frame() -> None:
    source = clip(17, fps=16)  # 64x48 = generation size at this area: no resize
    media = FakeMedia(videos={"v": source})
    inputs = video_repainting.build(spec(strength=0.3), media, PROFILE, fake_annotators())
    assert (inputs.width, inputs.height, inputs.num_frames) == (64, 48, 17)
    assert inputs.mask is None and inputs.reference_images is None
    assert inputs.conditioning_scale == 0.3
    assert inputs.video is not None and len(inputs.video) == 17
    for frame, src in zip(inputs.video, source.frames, strict=True):
        assert same(frame, invert(src))  # the fake depth rendering of that exact frame
    assert inputs.output_size == (64, 48)
    assert inputs.output_seconds == 17 / 16
    assert media.calls == [("video", "v", "input.video_url", 5.0)]


def test_16fps_sampling_of_a_32fps_input() -> None:
    source = clip(17, fps=32)  # 0.53 s -> 9 frames at 16 fps, every other source frame
    inputs = video_repainting.build(
        spec(), FakeMedia(videos={"v": source}), PROFILE, fake_annotators()
    )
    assert inputs.video is not None and inputs.num_frames == 9
    for k, frame in enumerate(inputs.video):
        assert same(frame, invert(source.frames[2 * k]))
    assert inputs.output_seconds == pytest.approx(17 / 32)


def test_long_input_is_resampled_to_the_model_frame_count() -> None:
    source = clip(40, fps=16, size=(32, 32))  # 2.5 s: 41 frames wanted, the model makes 17
    inputs = video_repainting.build(
        spec(), FakeMedia(videos={"v": source}), PROFILE, fake_annotators()
    )
    assert inputs.video is not None and inputs.num_frames == 17
    idx = np.linspace(0, 39, 17).round().astype(int)
    assert all(same(f, invert(source.frames[i])) for f, i in zip(inputs.video, idx, strict=True))
    assert inputs.output_seconds == 2.5  # duration = input length, not the generated count


def test_only_the_first_5_seconds_are_used() -> None:
    source = clip(6 * 16, fps=16, size=(16, 16))
    media = FakeMedia(videos={"v": source})
    inputs = video_repainting.build(spec(), media, PROFILE, fake_annotators())
    assert inputs.output_seconds == 5.0
    assert inputs.video is not None
    assert same(inputs.video[-1], invert(source.frames[80]))  # the frame at 5 s


@pytest.mark.parametrize(
    ("size", "output", "generation"),
    [
        ((1920, 1080), (1280, 720), (80, 48)),  # > 720P: scaled down
        ((1281, 720), (1280, 718), (80, 48)),  # just over: scaled, rounded down to even
        ((640, 480), (640, 480), (64, 48)),  # <= 720P: kept
    ],
)
def test_output_size_follows_the_input(
    size: tuple[int, int], output: tuple[int, int], generation: tuple[int, int]
) -> None:
    frame = Image.new("RGB", size, (10, 200, 30))
    source = FrameList([frame] * 5, 16)
    inputs = video_repainting.build(
        spec(), FakeMedia(videos={"v": source}), PROFILE, fake_annotators()
    )
    assert inputs.output_size == output
    assert (inputs.width, inputs.height) == generation
    assert inputs.video is not None
    assert all(f.size == generation for f in inputs.video)
    assert np.abs(np.asarray(inputs.video[0]).astype(int) - (245, 55, 225)).max() <= 1


@pytest.mark.parametrize(
    ("control", "attribute"),
    [
        (Control.POSE_BODY_FACE, "pose_body_face"),
        (Control.POSE_BODY, "pose_body"),
        (Control.DEPTH, "depth"),
        (Control.SCRIBBLE, "scribble"),
    ],
)
def test_each_control_uses_its_annotator(control: Control, attribute: str) -> None:
    annotators, rec = recording_set()
    source = clip(5)
    video_repainting.build(
        spec(control=control), FakeMedia(videos={"v": source}), PROFILE, annotators
    )
    assert [len(r.seen) for r in rec.values()] == [int(n == attribute) for n in rec]
    (frames,) = rec[attribute].seen
    assert all(same(a, b) for a, b in zip(frames, source.frames, strict=True))


def test_missing_annotator_fails_before_any_download() -> None:
    media = FakeMedia(videos={"v": clip(5)})
    with pytest.raises(errors.AnnotatorUnavailable) as info:
        video_repainting.build(spec(), media, PROFILE, fake_annotators(with_models=False))
    assert info.value.code == "InvalidParameter"
    assert "no depth checkpoint configured" in wire_message(info.value.message)
    assert "<VACE_ANNOTATOR_DIR>/depth/" in wire_message(info.value.message)
    assert media.calls == []


def test_reference_is_one_cut_out_subject() -> None:
    seen: list[tuple[int, int]] = []

    def cut(image: Image.Image) -> Image.Image:
        seen.append(image.size)
        return image.crop((0, 0, 20, 30))

    ref = noise((40, 60), 9)
    media = FakeMedia(videos={"v": clip(5)}, images={"r": ref, "r2": noise((40, 60), 10)})
    refs = (Reference("r", ReferenceRole.SUBJECT), Reference("r2", ReferenceRole.SUBJECT))
    inputs = video_repainting.build(spec(references=refs), media, PROFILE, fake_annotators(cut=cut))
    assert seen == [(40, 60)]  # only the first reference is used
    assert inputs.reference_images is not None and len(inputs.reference_images) == 1
    assert same(inputs.reference_images[0], ref.crop((0, 0, 20, 30)))
    assert ("image", "r", "input.ref_images_url", None) in media.calls


def test_refuses_what_the_api_should_have_refused() -> None:
    media = FakeMedia(videos={"v": clip(5)})
    with raises_wire(errors.InvalidParameter, match=r"parameters\.control_condition"):
        video_repainting.build(spec(control=None), media, PROFILE, fake_annotators())
    with raises_wire(errors.InvalidParameter, match=r"input\.video_url"):
        video_repainting.build(spec(video_url=None), media, PROFILE, fake_annotators())


def test_dispatch() -> None:
    media = FakeMedia(videos={"v": clip(5)})
    inputs = build_inputs(spec(strength=0.5), media, PROFILE, annotators=fake_annotators())
    assert inputs.conditioning_scale == 0.5 and inputs.num_frames == 5


@pytest.mark.usefixtures("one_torch_thread")
def test_end_to_end_through_the_tiny_pipeline() -> None:
    media = FakeMedia(videos={"v": clip(17, fps=16)}, images={"r": noise((40, 60), 3)})
    task = spec(references=(Reference("r", ReferenceRole.SUBJECT),), strength=0.7)
    inputs = build_inputs(task, media, PROFILE, annotators=fake_annotators())
    frames = run_tiny(inputs)
    assert frames.shape == (17, 48, 64, 3)
    assert frames.min() >= 0.0 and frames.max() <= 1.0
