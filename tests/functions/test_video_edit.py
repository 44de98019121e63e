from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest
from PIL import Image, ImageOps

from tests.functions.fakes import (
    PROFILE,
    FakeMedia,
    arr,
    box_mask,
    clip,
    invert,
    noise,
    recording_cut,
    run_tiny,
    same,
)
from tests.support.fake_annotators import fake_annotators
from tests.support.wire import raises_wire, wire_message
from vace_server import errors
from vace_server.annotators.base import AnnotatorSet
from vace_server.annotators.masks import expand_mask
from vace_server.functions import build_inputs, video_edit
from vace_server.media.clip import FrameList
from vace_server.tasks.spec import (
    Control,
    ExpandMode,
    MaskType,
    Reference,
    ReferenceRole,
    TaskSpec,
    VaceFunction,
)

SIZE = (64, 48)  # source size; with size=64*48 the generation size is the same: no resize
BOX = (16, 8, 40, 32)


def spec(**kw: object) -> TaskSpec:
    base: dict[str, object] = dict(
        function=VaceFunction.VIDEO_EDIT,
        prompt="a cat dance",
        seed=1,
        video_url="v",
        mask_image_url="m",
        size=SIZE,
        mask_type=MaskType.FIXED,
    )
    base.update(kw)
    return TaskSpec(**base)  # type: ignore[arg-type]


class RecordingTracker:
    """Records its call; returns the mask shifted right by `shift * k` px on frame k."""

    name, backend = "recording-tracker", "classical"

    def __init__(self, shift: int = 0, value: int = 255) -> None:
        self.shift, self.value = shift, value
        self.calls: list[tuple[list[Image.Image], Image.Image, int]] = []

    def track(
        self, frames: Sequence[Image.Image], mask: Image.Image, start: int
    ) -> list[Image.Image]:
        self.calls.append((list(frames), mask.copy(), start))
        a = (np.asarray(mask) >= 128).astype(np.uint8) * self.value
        return [Image.fromarray(np.roll(a, self.shift * k, axis=1)) for k in range(len(frames))]


def with_tracker(tracker: RecordingTracker, **kw: object) -> AnnotatorSet:
    base = fake_annotators(**kw)  # type: ignore[arg-type]
    return AnnotatorSet(
        segmenter=base.segmenter,
        tracker=tracker,
        scribble=base.scribble,
        depth=base.depth,
        pose_body=base.pose_body,
        pose_body_face=base.pose_body_face,
        notes=base.notes,
    )


def check_composite(
    frame: Image.Image, source: Image.Image, mask: Image.Image, fill: Image.Image | None = None
) -> None:
    """Outside the mask the input's pixels, inside gray 128 (or `fill`'s pixels)."""
    f, s, m = arr(frame), arr(source), arr(mask) == 255
    assert np.array_equal(f[~m], s[~m])
    if fill is None:
        assert (f[m] == 128).all()
    else:
        assert np.array_equal(f[m], arr(fill)[m])


# ------------------------------------------------------------------ mask image, fixed
def test_fixed_mask_region_gray_rest_kept() -> None:
    source = clip(17)
    media = FakeMedia(videos={"v": source}, masks={"m": box_mask(SIZE, BOX)})
    inputs = video_edit.build(spec(), media, PROFILE, fake_annotators())
    assert (inputs.width, inputs.height, inputs.num_frames) == (64, 48, 17)
    assert inputs.video is not None and inputs.mask is not None
    assert len(inputs.video) == len(inputs.mask) == 17
    for frame, mask, src in zip(inputs.video, inputs.mask, source.frames, strict=True):
        assert mask.mode == "L" and same(mask, box_mask(SIZE, BOX))
        check_composite(frame, src, mask)
    assert inputs.output_size == SIZE and inputs.output_seconds == 17 / 16
    assert inputs.reference_images is None and inputs.conditioning_scale == 1.0
    assert media.calls == [
        ("video", "v", "input.video_url", 5.0),
        ("mask", "m", "input.mask_image_url", None),
    ]


@pytest.mark.parametrize("control", [Control.DEPTH, Control.POSE_BODY_FACE])
def test_control_rendering_inside_the_mask(control: Control) -> None:
    source = clip(9)
    media = FakeMedia(videos={"v": source}, masks={"m": box_mask(SIZE, BOX)})
    inputs = video_edit.build(spec(control=control), media, PROFILE, fake_annotators())
    assert inputs.video is not None and inputs.mask is not None
    for frame, mask, src in zip(inputs.video, inputs.mask, source.frames, strict=True):
        check_composite(frame, src, mask, fill=invert(src))
        assert same(mask, box_mask(SIZE, BOX))  # mask unchanged by the control


def test_missing_annotator_fails_before_any_download() -> None:
    media = FakeMedia(videos={"v": clip(5)}, masks={"m": box_mask(SIZE, BOX)})
    with pytest.raises(errors.AnnotatorUnavailable, match="no depth checkpoint configured"):
        video_edit.build(
            spec(control=Control.DEPTH), media, PROFILE, fake_annotators(with_models=False)
        )
    assert media.calls == []


def test_default_size_crops_frames_and_masks_identically() -> None:
    source = clip(5)  # 64x48 -> covered to 80x48 (fit_area(1280, 720) at 64*64): rows cropped
    media = FakeMedia(videos={"v": source}, masks={"m": box_mask(SIZE, BOX)})
    inputs = video_edit.build(spec(size=None), media, PROFILE, fake_annotators())
    assert inputs.output_size == (1280, 720)
    assert (inputs.width, inputs.height) == (80, 48)
    assert inputs.video is not None and inputs.mask is not None
    # box (16..39, 8..31) x1.25 = (20..49, 10..39), minus the 6 rows cropped at the top
    ys, xs = np.nonzero(arr(inputs.mask[0]))
    assert (xs.min(), xs.max(), ys.min(), ys.max()) == (20, 49, 4, 33)
    assert set(np.unique(arr(inputs.mask[0]))) == {0, 255}
    for frame, mask, src in zip(inputs.video, inputs.mask, source.frames, strict=True):
        covered = ImageOps.fit(src, (80, 48), method=Image.Resampling.BICUBIC)
        check_composite(frame, covered, mask)


def test_mask_image_resolution_must_match_the_video() -> None:
    tracker = RecordingTracker()
    media = FakeMedia(videos={"v": clip(5)}, masks={"m": box_mask((48, 64), BOX)})
    with pytest.raises(errors.InvalidParameter) as info:
        video_edit.build(spec(mask_type=MaskType.TRACKING), media, PROFILE, with_tracker(tracker))
    assert info.value.code == "InvalidParameter"
    assert wire_message(info.value.message).startswith("The size is not match")
    assert "input.mask_image_url is 48x64" in wire_message(info.value.message)
    assert "input.video_url is 64x48" in wire_message(info.value.message)
    assert tracker.calls == []


# ------------------------------------------------------------------ mask_frame_id, tracking
@pytest.mark.parametrize(
    ("frame_id", "start"),
    [(0, 0), (1, 0), (2, 0), (3, 1), (7, 3), (8, 3), (16, 7), (17, 8)],
)
def test_mask_frame_id_maps_to_the_nearest_16fps_frame(frame_id: int, start: int) -> None:
    source = clip(17, fps=32)  # kept at 16 fps: source frames 0, 2, ..., 16
    tracker = RecordingTracker()
    media = FakeMedia(videos={"v": source}, masks={"m": box_mask(SIZE, BOX)})
    task = spec(mask_type=MaskType.TRACKING, mask_frame_id=frame_id, expand_ratio=0.0)
    inputs = video_edit.build(task, media, PROFILE, with_tracker(tracker))
    ((frames, mask, got_start),) = tracker.calls
    assert got_start == start
    assert len(frames) == 9 and all(same(f, source.frames[2 * k]) for k, f in enumerate(frames))
    assert same(mask, box_mask(SIZE, BOX))
    assert inputs.num_frames == 9


def test_mask_frame_id_past_the_video_fails_before_fetching_the_mask() -> None:
    media = FakeMedia(videos={"v": clip(17, fps=32)}, masks={"m": box_mask(SIZE, BOX)})
    with pytest.raises(errors.InvalidParameter) as info:
        video_edit.build(spec(mask_frame_id=18), media, PROFILE, fake_annotators())
    assert info.value.code == "InvalidParameter"
    assert "input.mask_frame_id 18" in wire_message(info.value.message) and "17" in wire_message(
        info.value.message
    )
    assert [kind for kind, *_ in media.calls] == ["video"]


def test_mask_frame_id_counts_only_the_first_5_seconds() -> None:
    media = FakeMedia(videos={"v": clip(96, fps=16, size=SIZE)}, masks={"m": box_mask(SIZE, BOX)})
    # the first 5 s hold 81 frames (the one at 5 s included): id 81 is the last (contract:
    # max = fps x duration + 1), 82 is past it
    inputs = video_edit.build(spec(mask_frame_id=81), media, PROFILE, fake_annotators())
    assert inputs.num_frames == 17
    with raises_wire(errors.InvalidParameter, match=r"input\.mask_frame_id 82"):
        video_edit.build(spec(mask_frame_id=82), media, PROFILE, fake_annotators())


def test_tracked_masks_are_expanded_per_frame_deterministically() -> None:
    source = clip(9)
    tracker = RecordingTracker(shift=1, value=200)  # moves 1 px/frame, not exactly 255
    mask = box_mask(SIZE, (20, 16, 36, 24))  # 16x8 box
    media = FakeMedia(videos={"v": source}, masks={"m": mask})
    task = spec(mask_type=MaskType.TRACKING, expand_mode=ExpandMode.BBOX, expand_ratio=0.25)
    first = video_edit.build(task, media, PROFILE, with_tracker(tracker))
    again = video_edit.build(task, media, PROFILE, with_tracker(RecordingTracker(1, 200)))
    assert first.mask is not None and again.mask is not None and first.video is not None
    for k, (m, m2, frame) in enumerate(zip(first.mask, again.mask, first.video, strict=True)):
        # 16x8 box, ratio 0.25: +4 right, +2 top/bottom, +3 left (4 = k: VACE's kernel reaches
        # k - 1 to the left), following the tracked box
        assert same(m, box_mask(SIZE, (17 + k, 14, 40 + k, 26)))
        assert same(m, m2)
        check_composite(frame, source.frames[k], m)


@pytest.mark.parametrize("mode", list(ExpandMode))
def test_tracking_uses_expand_mode_and_ratio(mode: ExpandMode) -> None:
    blob = np.zeros((48, 64), np.uint8)
    blob[10:30, 20:24] = 255
    blob[26:30, 20:44] = 255  # an L shape: hull, bbox and original differ
    m = Image.fromarray(blob, mode="L")
    media = FakeMedia(videos={"v": clip(5)}, masks={"m": m})
    task = spec(mask_type=MaskType.TRACKING, expand_mode=mode, expand_ratio=0.1)
    inputs = video_edit.build(task, media, PROFILE, with_tracker(RecordingTracker()))
    assert inputs.mask is not None
    assert all(same(x, expand_mask(m, mode.value, 0.1)) for x in inputs.mask)


def test_fixed_masks_are_not_tracked_or_expanded() -> None:
    tracker = RecordingTracker(shift=1)
    media = FakeMedia(videos={"v": clip(5)}, masks={"m": box_mask(SIZE, BOX)})
    task = spec(mask_type=MaskType.FIXED, expand_mode=ExpandMode.BBOX, expand_ratio=1.0)
    inputs = video_edit.build(task, media, PROFILE, with_tracker(tracker))
    assert tracker.calls == []
    assert inputs.mask is not None and all(same(m, box_mask(SIZE, BOX)) for m in inputs.mask)


# ------------------------------------------------------------------ mask video
def mask_clip(count: int, fps: float = 32, size: tuple[int, int] = SIZE) -> FrameList:
    """Frame i: a lossy-looking box (250 on 5) at x = i .. i+9."""
    frames = []
    for i in range(count):
        a = np.full((size[1], size[0], 3), 5, np.uint8)
        a[10:20, i : i + 10] = 250
        frames.append(Image.fromarray(a))
    return FrameList(frames, fps)


def test_mask_video_uses_the_videos_frame_indices() -> None:
    tracker = RecordingTracker()
    source = clip(17, fps=32)
    media = FakeMedia(videos={"v": source, "mv": mask_clip(17)})
    task = spec(mask_image_url=None, mask_video_url="mv", mask_type=MaskType.TRACKING)
    inputs = video_edit.build(task, media, PROFILE, with_tracker(tracker))
    assert tracker.calls == []  # used as given: no tracking, no expansion
    assert inputs.mask is not None and inputs.video is not None and inputs.num_frames == 9
    for k, (m, frame) in enumerate(zip(inputs.mask, inputs.video, strict=True)):
        assert same(m, box_mask(SIZE, (2 * k, 10, 2 * k + 10, 20)))  # source frame 2k
        check_composite(frame, source.frames[2 * k], m)
    assert ("video", "mv", "input.mask_video_url", 5.0) in media.calls


def test_mask_image_wins_over_a_mask_video() -> None:
    media = FakeMedia(videos={"v": clip(5)}, masks={"m": box_mask(SIZE, BOX)})
    inputs = video_edit.build(spec(mask_video_url="mv"), media, PROFILE, fake_annotators())
    assert inputs.mask is not None and same(inputs.mask[0], box_mask(SIZE, BOX))
    assert "mv" not in [url for _, url, *_ in media.calls]


def test_long_mask_video_matches_a_long_video_after_the_5s_cut() -> None:
    media = FakeMedia(videos={"v": clip(96, size=(16, 16)), "mv": mask_clip(96, 16, (16, 16))})
    task = spec(mask_image_url=None, mask_video_url="mv", size=(16, 16))
    inputs = video_edit.build(task, media, PROFILE, fake_annotators())
    assert inputs.output_seconds == 5.0 and inputs.num_frames == 17


@pytest.mark.parametrize(
    ("mask_video", "code", "start", "names"),
    [
        (mask_clip(17, 32, (48, 64)), "InvalidParameter", "The size is not match", "48x64"),
        (mask_clip(17, 25), "InvalidFile.FPS", "The frame rate of", "25 fps"),
        (mask_clip(16, 32), "InvalidFile.Duration", "The length of", "16 frames"),
    ],
)
def test_mask_video_must_match_the_video(
    mask_video: FrameList, code: str, start: str, names: str
) -> None:
    media = FakeMedia(videos={"v": clip(17, fps=32), "mv": mask_video})
    task = spec(mask_image_url=None, mask_video_url="mv")
    with pytest.raises(errors.ServiceError) as info:
        video_edit.build(task, media, PROFILE, fake_annotators())
    assert info.value.code == code
    assert wire_message(info.value.message).startswith(start)
    assert "input.mask_video_url" in wire_message(
        info.value.message
    ) and "input.video_url" in wire_message(info.value.message)
    assert names in wire_message(info.value.message)


def test_refuses_what_the_api_should_have_refused() -> None:
    media = FakeMedia(videos={"v": clip(5)})
    with raises_wire(errors.InvalidParameter, match=r"Field required: input\.mask_image_url"):
        video_edit.build(spec(mask_image_url=None), media, PROFILE, fake_annotators())
    with raises_wire(errors.InvalidParameter, match=r"Field required: input\.video_url"):
        video_edit.build(spec(video_url=None), media, PROFILE, fake_annotators())


# ------------------------------------------------------------------ reference
def test_reference_obj_by_default_cut_out() -> None:
    ref = noise((40, 60), 7)
    media = FakeMedia(videos={"v": clip(5)}, masks={"m": box_mask(SIZE, BOX)}, images={"r": ref})
    task = spec(references=(Reference("r", ReferenceRole.SUBJECT),))
    inputs = build_inputs(
        task, media, PROFILE, annotators=fake_annotators(cut=lambda i: i.crop((0, 0, 9, 9)))
    )
    assert inputs.reference_images is not None and len(inputs.reference_images) == 1
    assert same(inputs.reference_images[0], ref.crop((0, 0, 9, 9)))


def test_reference_bg_is_kept_when_configured() -> None:
    ref = noise((128, 96), 8)
    cut_calls: list[Image.Image] = []
    media = FakeMedia(videos={"v": clip(5)}, masks={"m": box_mask(SIZE, BOX)}, images={"r": ref})
    task = spec(references=(Reference("r", ReferenceRole.SUBJECT),))
    inputs = build_inputs(
        task,
        media,
        PROFILE,
        annotators=fake_annotators(cut=recording_cut(cut_calls)),
        edit_reference_role=ReferenceRole.SCENE,
    )
    assert cut_calls == []
    assert inputs.reference_images is not None
    (scene,) = inputs.reference_images
    assert same(scene, ref)  # kept whole: the pipeline letterboxes it on white, as VACE does


# ------------------------------------------------------------------ end to end
@pytest.mark.usefixtures("one_torch_thread")
def test_end_to_end_through_the_tiny_pipeline() -> None:
    media = FakeMedia(
        videos={"v": clip(17)}, masks={"m": box_mask(SIZE, BOX)}, images={"r": noise((40, 60), 2)}
    )
    task = spec(
        mask_type=MaskType.TRACKING,
        control=Control.DEPTH,
        references=(Reference("r", ReferenceRole.SUBJECT),),
    )
    inputs = build_inputs(task, media, PROFILE, annotators=fake_annotators())
    frames = run_tiny(inputs)
    assert frames.shape == (17, 48, 64, 3)
    assert frames.min() >= 0.0 and frames.max() <= 1.0
