from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest
from PIL import Image

from tests.functions.fakes import (
    PROFILE,
    RecordingAnnotator,
    arr,
    clip,
    noise,
    recording_cut,
    same,
)
from tests.support.fake_annotators import FakeSegmenter, fake_annotators
from tests.support.wire import wire_message
from vace_server import errors
from vace_server.annotators.base import AnnotatorSet
from vace_server.errors import InputField
from vace_server.functions import common
from vace_server.model_inputs import fit_area
from vace_server.tasks.spec import Control, ReferenceRole


# ------------------------------------------------------------------ 16 fps sampling
@pytest.mark.parametrize(
    ("count", "src_fps", "max_frames", "expected_len"),
    [
        (150, 30, 81, 81),  # 5 s at 30 fps -> 81 frames
        (151, 30, 81, 81),  # a longer 30 fps video cut at 5 s, the frame at 5 s kept
        (81, 16, 81, 81),  # Wan's own 81-frame 16 fps output fed back in: all kept
        (125, 25, 81, 81),  # 5 s at 25 fps
        (90, 30, 81, 49),  # 3 s at 30 fps -> 49
        (80, 16, 81, 81),  # exactly 5 s at 16 fps (no frame at 5 s): the last one held -> 81
        (16, 16, 81, 17),  # exactly 1 s at 16 fps: the last frame held -> 17
        (49, 16, 81, 49),  # a clip cut at 3 s, the frame at 3 s kept
        (150, 30, 17, 17),  # the model's frame count caps it; picked over the whole clip
        (17, 16, 81, 17),
        (3, 16, 81, 1),
    ],
)
def test_sample_indices_counts(
    count: int, src_fps: float, max_frames: int, expected_len: int
) -> None:
    idx = common.sample_indices(count, src_fps, max_frames, 16)
    assert len(idx) == expected_len
    assert (len(idx) - 1) % 4 == 0
    assert idx[0] == 0
    if expected_len > 1:
        assert idx[-1] == count - 1  # first and last kept: resampled, not truncated
    assert idx == sorted(idx) and len(set(idx)) == min(len(idx), count)


def test_the_end_of_span_hold_repeats_only_the_last_frame() -> None:
    assert common.sample_indices(80, 16, 81, 16) == [*range(80), 79]
    # extension clips (no 4n+1 snap, fixed total) never repeat a frame
    assert common.sample_indices(48, 16, 81, 16, snap=False) == list(range(48))


def test_sample_indices_exact_positions() -> None:
    # 17 frames at 32 fps -> round(8.5) + 1 = 9 frames: every other source frame
    assert common.sample_indices(17, 32, 81, 16) == [0, 2, 4, 6, 8, 10, 12, 14, 16]
    assert common.sample_indices(17, 16, 81, 16) == list(range(17))
    # without the 4n+1 snap (clips of video_extension): 10 frames at 16 fps stay 10
    assert common.sample_indices(10, 16, 81, 16, snap=False) == list(range(10))
    assert common.sample_indices(10, 16, 81, 16) == [0, 1, 2, 3, 4, 6, 7, 8, 9]


@pytest.mark.parametrize(
    ("count", "fps", "ok"),
    [
        (1, 16, False),  # a single frame is a still image
        (4, 16, False),  # 0.25 s at 16 fps: 4 source frames (5 only with the end hold)
        (6, 30, False),  # 0.2 s: round(3.2) + 1 = 4 frames at 16 fps
        (5, 16, True),  # 5 frames at 16 fps, the shortest video the model makes
        (7, 30, True),  # 0.23 s: round(3.73) + 1 = 5
        (9, 32, True),
    ],
)
def test_require_video_length(count: int, fps: float, ok: bool) -> None:
    c = clip(count, fps=fps, size=(16, 16))
    sampled = len(common.sample_indices(count, fps, PROFILE.num_frames, 16))
    assert (min(sampled, count) >= common.MIN_VIDEO_FRAMES) is ok
    if ok:
        common.require_video_length(c, InputField.VIDEO, PROFILE)
        return
    with pytest.raises(errors.InvalidFile) as info:
        common.require_video_length(c, InputField.VIDEO, PROFILE)
    assert info.value.code == "InvalidFile.Duration"
    message = wire_message(info.value.message)
    assert "input.video_url" in message and "at least 5" in message


def test_sample_indices_rejects_empty() -> None:
    with pytest.raises(ValueError):
        common.sample_indices(0, 16, 81, 16)
    with pytest.raises(ValueError):
        common.sample_indices(5, 0, 81, 16)


def test_sample_frames_returns_the_chosen_prepared_frames() -> None:
    c = clip(17, fps=32)
    seen: list[tuple[int, int]] = []

    def prepare(frame: Image.Image) -> Image.Image:
        seen.append(frame.size)
        return common.cover(frame, (32, 16))

    idx, frames = common.sample_frames(c, 81, 16, prepare)
    assert idx == list(range(0, 17, 2))
    assert len(seen) == len(idx)  # only the sampled frames are prepared, each once
    assert all(
        same(f, common.cover(c.frames[i], (32, 16))) for f, i in zip(frames, idx, strict=True)
    )


def test_clip_seconds_and_fps() -> None:
    assert common.clip_seconds(clip(24, fps=16)) == 1.5
    # the kept span may hold the frame at 5 s (81 at 16 fps): the output stays at most 5 s
    assert common.clip_seconds(clip(81, fps=16, size=(16, 16))) == 5.0
    assert common.clip_seconds(clip(49, fps=16, size=(16, 16)), 3.0) == 3.0
    assert common.same_fps(30000 / 1001, 29.97)
    assert not common.same_fps(30, 25)


# ------------------------------------------------------------------ sizes
@pytest.mark.parametrize(
    ("size", "expected"),
    [
        ((1280, 720), (1280, 720)),  # exactly 720P: kept
        ((960, 960), (960, 960)),
        ((641, 481), (640, 480)),  # within: kept, rounded down to even for H.264
        ((1920, 1080), (1280, 720)),  # exact, no 1279.99 float error
        ((3840, 2160), (1280, 720)),
        ((1281, 720), (1280, 718)),  # 719.6 -> 719 -> even 718
        ((2000, 1000), (1356, 678)),
        ((1080, 1920), (720, 1280)),
    ],
)
def test_within_720p(size: tuple[int, int], expected: tuple[int, int]) -> None:
    out = common.within_720p(*size)
    assert out == expected
    assert out[0] * out[1] <= common.MAX_720P_PIXELS
    assert out[0] % 2 == 0 and out[1] % 2 == 0
    if size[0] * size[1] > common.MAX_720P_PIXELS:
        assert out[0] / out[1] == pytest.approx(size[0] / size[1], rel=0.01)


def test_even_floor() -> None:
    assert common.even_floor(52.5) == 52
    assert common.even_floor(53) == 52
    assert common.even_floor(114.99999999999999) == 114
    assert common.even_floor(115.99999999999999) == 116
    assert common.even_floor(1) == 2


def test_generation_size_is_fit_area_and_refuses_tiny_frames() -> None:
    assert common.generation_size(64, 48, PROFILE) == fit_area(64, 48, PROFILE.generation_area)
    assert common.generation_size(1280, 720, PROFILE) == (80, 48)
    with pytest.raises(errors.InvalidFile) as info:
        common.generation_size(8, 64, PROFILE)
    assert info.value.code == "InvalidFile.Resolution"
    assert "8x64" in wire_message(info.value.message)


def test_size_not_match_message() -> None:
    err = common.size_not_match(InputField.MASK_IMAGE, (10, 20), InputField.VIDEO, (30, 40))
    assert isinstance(err, errors.InvalidParameter) and err.code == "InvalidParameter"
    assert wire_message(err.message).startswith("The size is not match")
    assert "input.mask_image_url is 10x20" in wire_message(err.message)
    assert "input.video_url is 30x40" in wire_message(err.message)


# ------------------------------------------------------------------ images and masks
def test_cover_same_size_is_identity_and_rgb() -> None:
    img = noise((64, 48), 1)
    assert same(common.cover(img, (64, 48)), img)
    assert common.cover(img.convert("L"), (64, 48)).mode == "RGB"


def test_cover_and_cover_mask_crop_identically() -> None:
    # A 96x48 frame covered to 48x48 keeps the centre 48 columns. A white column band at
    # x=40..55 in the frame and the mask must land on the same columns (16..31) in both.
    frame = np.zeros((48, 96, 3), np.uint8)
    frame[:, 40:56] = 255
    mask = np.zeros((48, 96), np.uint8)
    mask[:, 40:56] = 200  # not exactly 255: binarised
    f = arr(common.cover(Image.fromarray(frame), (48, 48)))
    m = arr(common.cover_mask(Image.fromarray(mask, mode="L"), (48, 48)))
    assert set(np.unique(m)) == {0, 255}
    assert np.array_equal(np.nonzero(m[0])[0], np.arange(16, 32))
    assert f[:, 18:30].min() >= 250 and f[:, :12].max() <= 5 and f[:, 36:].max() <= 5


def test_cover_mask_downscale_stays_binary() -> None:
    rng = np.random.default_rng(0)
    mask = Image.fromarray(rng.integers(0, 256, (100, 90), dtype=np.uint8), mode="L")
    out = common.cover_mask(mask, (32, 48))
    assert out.mode == "L" and out.size == (32, 48)
    assert set(np.unique(arr(out))) <= {0, 255}


def test_binarise_thresholds() -> None:
    a = np.array([[0, 1, 127, 128, 129, 255]], np.uint8)
    out = common.binarise(Image.fromarray(a, mode="L"))  # the model's own: >= 128
    assert out.mode == "L"
    assert arr(out).tolist() == [[0, 0, 0, 255, 255, 255]]
    faint = common.binarise(Image.fromarray(a, mode="L"), common.MASK_IMAGE_THRESHOLD)
    assert arr(faint).tolist() == [[0, 255, 255, 255, 255, 255]]  # mask images: > 0
    rgb = Image.new("RGB", (2, 2), (255, 255, 255))
    assert arr(common.binarise(rgb)).tolist() == [[255, 255], [255, 255]]


def test_gray_canvas_and_flat_mask() -> None:
    g = common.gray_canvas((5, 3))
    assert g.mode == "RGB" and g.size == (5, 3) and (arr(g) == 128).all()
    m = common.flat_mask((5, 3), 255)
    assert m.mode == "L" and (arr(m) == 255).all()


# ------------------------------------------------------------------ annotators
@pytest.mark.parametrize(
    ("control", "attribute"),
    [
        (Control.POSE_BODY_FACE, "pose_body_face"),
        (Control.POSE_BODY, "pose_body"),
        (Control.DEPTH, "depth"),
        (Control.SCRIBBLE, "scribble"),
    ],
)
def test_annotator_or_fail_picks_the_controls_annotator(control: Control, attribute: str) -> None:
    annotators = fake_annotators()
    assert common.annotator_or_fail(annotators, control) is getattr(annotators, attribute)


@pytest.mark.parametrize(
    ("control", "checkpoint", "note"),
    [
        (Control.DEPTH, "Depth-Anything-V2-Large-hf", "depth"),
        (Control.POSE_BODY, "dw-ll_ucoco_384.onnx", "posebody"),
        (Control.POSE_BODY_FACE, "yolox_l.onnx", "posebodyface"),
    ],
)
def test_annotator_or_fail_says_what_to_install(
    control: Control, checkpoint: str, note: str
) -> None:
    base = fake_annotators(with_models=False)
    annotators = AnnotatorSet(
        segmenter=base.segmenter,
        tracker=base.tracker,
        scribble=base.scribble,
        notes={note: "VACE_ANNOTATOR_DIR is not set"},
    )
    with pytest.raises(errors.AnnotatorUnavailable) as info:
        common.annotator_or_fail(annotators, control)
    msg = wire_message(info.value.message)
    assert (info.value.code, info.value.status) == ("InvalidParameter", 400)
    assert f"control_condition '{control.value}'" in msg
    assert checkpoint in msg and "<VACE_ANNOTATOR_DIR>/" in msg
    assert "(VACE_ANNOTATOR_DIR is not set)" in msg
    # blamed on the server's configuration, with the command that fills the folder
    assert "This is the server's configuration, not a fault of the request" in msg
    assert "`hf download " in msg and "--local-dir <VACE_ANNOTATOR_DIR>" in msg


def test_annotator_or_fail_without_a_note() -> None:
    base = fake_annotators(with_models=False)
    with pytest.raises(errors.AnnotatorUnavailable, match="no checkpoint configured"):
        common.annotator_or_fail(base, Control.POSE_BODY)


def test_annotate_checks_count_and_size() -> None:
    frames = [noise((16, 16), i) for i in range(3)]
    out = common.annotate(RecordingAnnotator("r"), frames)
    assert len(out) == 3 and same(out[0], Image.fromarray(255 - np.asarray(frames[0])))

    class Dropping:
        name, backend = "drop", "classical"

        def annotate(self, frames: Sequence[Image.Image]) -> list[Image.Image]:
            return list(frames[:-1])

    with pytest.raises(ValueError, match="drop"):
        common.annotate(Dropping(), frames)


# ------------------------------------------------------------------ references
def test_prepare_reference_obj_is_cut_out_not_resized() -> None:
    seen: list[tuple[int, int]] = []

    def cut(image: Image.Image) -> Image.Image:
        seen.append(image.size)
        return image.crop((1, 1, 11, 6)).convert("L")

    image = noise((40, 30), 4)
    out = common.prepare_reference(image, ReferenceRole.SUBJECT, FakeSegmenter(cut), (64, 48))
    assert seen == [(40, 30)]
    assert out.mode == "RGB" and out.size == (10, 5)


def test_prepare_reference_bg_is_kept_whole() -> None:
    seen: list[Image.Image] = []
    image = noise((64, 48), 5)
    out = common.prepare_reference(
        image, ReferenceRole.SCENE, FakeSegmenter(recording_cut(seen)), (64, 48)
    )
    assert seen == []
    assert same(out, image)
    out = common.prepare_reference(image, ReferenceRole.SCENE, FakeSegmenter(), (32, 32))
    assert same(out, image)  # not cropped to the generation size: the pipeline letterboxes it


def test_annotator_or_fail_with_the_real_registry_notes() -> None:
    from vace_server.annotators.registry import load_annotators
    from vace_server.settings import Settings

    annotators = load_annotators(Settings(annotator_dir=None, device="cpu"))
    with pytest.raises(errors.AnnotatorUnavailable) as info:
        common.annotator_or_fail(annotators, Control.DEPTH)
    assert annotators.notes["depth"] in wire_message(info.value.message)
    assert common.annotator_or_fail(annotators, Control.SCRIBBLE) is annotators.scribble
