"""video_edit masks read as VACE reads them: a mask image's every pixel > 0 is "generate"
(VACE's inpainting annotator), so soft or JPEG edges leave no rim of the removed object; the
tracker is seeded with that mask; a mask video keeps the model's own >= 128."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
from PIL import Image

from tests.functions.fakes import PROFILE, FakeMedia, arr, clip, noise
from tests.functions.test_video_edit import SIZE, RecordingTracker, spec, with_tracker
from tests.support.fake_annotators import fake_annotators
from vace_server.functions import video_edit
from vace_server.media.clip import FrameList
from vace_server.model_inputs import VaceInputs
from vace_server.tasks.spec import ExpandMode, MaskType


def test_mask_image_every_nonzero_pixel_is_edit() -> None:
    # VACE's inpainting annotator: bool_mask = mask > 0 (the contract's "grey >= 128" decision
    # is superseded for mask images; mask videos keep the model's own >= 128, below).
    mask = np.zeros((48, 64), np.uint8)
    mask[0:10, 0:10] = 1  # edit
    mask[20:30, 20:30] = 127  # edit
    mask[40:48, 50:64] = 200  # edit
    media = FakeMedia(videos={"v": clip(5)}, masks={"m": Image.fromarray(mask, mode="L")})
    inputs = video_edit.build(spec(), media, PROFILE, fake_annotators())
    assert inputs.mask is not None
    expected = np.where(mask > 0, 255, 0)
    assert all(np.array_equal(arr(m), expected) for m in inputs.mask)


OBJECT = (20, 12, 44, 36)  # x0, y0, x1, y1 (exclusive) of the object to remove


def object_clip(count: int = 5) -> FrameList:
    """Noise background with a solid red object at OBJECT on every frame."""
    frames = []
    for k in range(count):
        a = np.asarray(noise(SIZE, k)).copy()
        a[..., 0] = np.minimum(a[..., 0], 200)  # no background pixel is pure red
        x0, y0, x1, y1 = OBJECT
        a[y0:y1, x0:x1] = (255, 0, 0)
        frames.append(Image.fromarray(a))
    return FrameList(frames, 16)


def soft_object_mask() -> Image.Image:
    """A feathered brush mask: solid 1 px inside the object's edge, fading out over its rim
    (values ~90 on the object's outermost ring: under 128)."""
    x0, y0, x1, y1 = OBJECT
    hard = np.zeros((SIZE[1], SIZE[0]), np.float32)
    hard[y0 + 1 : y1 - 1, x0 + 1 : x1 - 1] = 255
    soft = cv2.GaussianBlur(hard, (0, 0), 1.5)
    return Image.fromarray(np.round(soft).astype(np.uint8), mode="L")


def jpeg(image: Image.Image, quality: int = 60) -> Image.Image:
    """`image` saved as an RGB JPEG (4:2:0, as a phone or browser would) and decoded again."""
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="JPEG", quality=quality)
    return Image.open(io.BytesIO(buffer.getvalue())).convert("L")


def assert_object_gone(inputs: VaceInputs) -> None:
    """No pixel of the red object is left in the conditioning video, and the mask covers it."""
    x0, y0, x1, y1 = OBJECT
    assert inputs.video is not None and inputs.mask is not None
    for frame, mask in zip(inputs.video, inputs.mask, strict=True):
        f = arr(frame)
        red = (f[..., 0] == 255) & (f[..., 1] == 0) & (f[..., 2] == 0)
        assert not red.any(), f"{int(red.sum())} object pixels survive"
        assert (arr(mask)[y0:y1, x0:x1] == 255).all()


@pytest.mark.parametrize("encode", [lambda m: m, jpeg], ids=["soft", "jpeg"])
def test_soft_or_jpeg_mask_leaves_no_rim_of_the_object(encode) -> None:
    mask = encode(soft_object_mask())
    x0, y0, x1, y1 = OBJECT
    ring = np.asarray(mask)[y0:y1, x0:x1]
    assert 0 < ring.min() < 128  # the premise: a 128 threshold would leave a rim
    media = FakeMedia(videos={"v": object_clip()}, masks={"m": mask})
    assert_object_gone(video_edit.build(spec(), media, PROFILE, fake_annotators()))


def test_tracking_is_seeded_with_every_nonzero_pixel() -> None:
    tracker = RecordingTracker()
    mask = jpeg(soft_object_mask())
    media = FakeMedia(videos={"v": object_clip()}, masks={"m": mask})
    task = spec(mask_type=MaskType.TRACKING, expand_mode=ExpandMode.ORIGINAL, expand_ratio=0.0)
    inputs = video_edit.build(task, media, PROFILE, with_tracker(tracker))
    ((_, seed, _),) = tracker.calls
    assert np.array_equal(arr(seed), np.where(np.asarray(mask) > 0, 255, 0))
    assert_object_gone(inputs)


def test_mask_video_keeps_the_models_128_threshold() -> None:
    # VACE feeds a mask video to the model as is; the model keeps value / 255 <= 0.5.
    a = np.zeros((48, 64), np.uint8)
    a[0:10, 0:10], a[20:30, 20:30], a[40:48, 50:64] = 127, 128, 200
    masks = FrameList([Image.fromarray(a, mode="L")] * 5, 16)
    media = FakeMedia(videos={"v": clip(5), "mv": masks})
    inputs = video_edit.build(
        spec(mask_image_url=None, mask_video_url="mv"), media, PROFILE, fake_annotators()
    )
    assert inputs.mask is not None
    assert all(np.array_equal(arr(m), np.where(a >= 128, 255, 0)) for m in inputs.mask)
