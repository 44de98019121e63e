"""The real transformers SAM2 code path, on a tiny randomly initialised model built offline."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.support.tiny_sam2 import save_tiny_sam2, save_tiny_sam2_image_only
from vace_server.annotators import sam2 as sam2_module
from vace_server.annotators.cutout import cut_out_subject
from vace_server.annotators.errors import AnnotatorLoadError
from vace_server.annotators.sam2 import (
    Sam2Segmenter,
    Sam2Tracker,
    apply_subject_mask,
    load_sam2_segmenter,
    load_sam2_tracker,
)

W, H, N = 80, 48, 7


@pytest.fixture(scope="module")
def snapshot(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_sam2(tmp_path_factory.mktemp("sam2"))


def _frames() -> list[Image.Image]:
    rng = np.random.default_rng(1)
    return [Image.fromarray(rng.integers(0, 256, (H, W, 3), dtype=np.uint8)) for _ in range(N)]


def _box_mask() -> Image.Image:
    mask = np.zeros((H, W), np.uint8)
    mask[10:30, 20:55] = 255
    return Image.fromarray(mask)


def _values(mask: Image.Image) -> set[int]:
    return {int(v) for v in np.unique(np.asarray(mask))}


@pytest.mark.parametrize("start", [3, 0, N - 1])
def test_tracker_one_binary_mask_per_frame_forward_and_backward(snapshot: Path, start: int) -> None:
    tracker = load_sam2_tracker(snapshot, "cpu")
    assert isinstance(tracker, Sam2Tracker)
    assert (tracker.name, tracker.backend) == ("sam2-video", "model")
    out = tracker.track(_frames(), _box_mask(), start)
    assert len(out) == N
    for mask in out:
        assert mask.mode == "L" and mask.size == (W, H)
        assert _values(mask) <= {0, 255}
    assert np.array_equal(np.asarray(out[start]), np.asarray(_box_mask()))


def test_tracker_is_deterministic(snapshot: Path) -> None:
    tracker = load_sam2_tracker(snapshot, "cpu")
    first = tracker.track(_frames(), _box_mask(), 3)
    second = load_sam2_tracker(snapshot, "cpu").track(_frames(), _box_mask(), 3)
    assert all(
        np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(first, second, strict=True)
    )


def test_tracker_empty_mask_and_bad_start(snapshot: Path) -> None:
    tracker = load_sam2_tracker(snapshot, "cpu")
    out = tracker.track(_frames()[:3], Image.new("L", (W, H), 0), 1)
    assert [_values(m) for m in out] == [{0}, {0}, {0}]
    with pytest.raises(ValueError):
        tracker.track(_frames(), _box_mask(), N)


def test_segmenter_returns_a_white_background_crop_of_its_mask(snapshot: Path) -> None:
    segmenter = load_sam2_segmenter(snapshot, "cpu")
    assert isinstance(segmenter, Sam2Segmenter)
    assert (segmenter.name, segmenter.backend) == ("sam2-image", "model")
    image = _frames()[0]
    mask = segmenter.subject_mask(image)
    out = segmenter.cut_out(image)
    assert out.mode == "RGB"
    assert out.size[0] <= W and out.size[1] <= H
    if mask is None:  # the random model found nothing: classical fallback
        assert np.array_equal(np.asarray(out), np.asarray(cut_out_subject(image)))
    else:
        assert mask.shape == (H, W) and mask.dtype == bool and mask.any()
        assert np.array_equal(np.asarray(out), np.asarray(apply_subject_mask(image, mask)))


def test_apply_subject_mask_whitens_and_crops() -> None:
    image = Image.new("RGB", (20, 10), (10, 200, 30))
    mask = np.zeros((10, 20), bool)
    mask[2:6, 4:9] = True
    mask[3, 4] = False  # a background pixel inside the bounding box
    out = np.asarray(apply_subject_mask(image, mask))
    assert out.shape == (4, 5, 3)
    assert tuple(out[0, 0]) == (10, 200, 30)
    assert tuple(out[1, 0]) == (255, 255, 255)
    with pytest.raises(ValueError):
        apply_subject_mask(image, np.zeros((10, 20), bool))


def test_segmenter_falls_back_to_classical_only_on_an_empty_mask(
    snapshot: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    segmenter = load_sam2_segmenter(snapshot, "cpu")
    image = Image.new("RGB", (60, 40), (255, 255, 255))
    image.paste((200, 20, 20), (20, 10, 40, 30))
    monkeypatch.setattr(Sam2Segmenter, "subject_mask", lambda self, img: None)
    with caplog.at_level(logging.WARNING, logger=sam2_module.__name__):
        out = segmenter.cut_out(image)
    assert "classical cut-out" in caplog.text
    assert np.array_equal(np.asarray(out), np.asarray(cut_out_subject(image)))


def test_choose_prefers_a_subject_over_everything() -> None:
    everything = np.ones((4, 10, 10), bool)
    masks = everything.copy()
    masks[1, :5] = False  # half the image
    masks[2] = False  # empty
    chosen = sam2_module._choose(masks, np.array([0.9, 0.5, 0.99, 0.1]))
    assert chosen is not None and chosen.mean() == 0.5
    assert sam2_module._choose(np.zeros((2, 4, 4), bool), np.array([0.5, 0.6])) is None


def test_missing_or_incomplete_folder_names_what_to_put_there(tmp_path: Path) -> None:
    with pytest.raises(AnnotatorLoadError, match=r"facebook/sam2\.1-hiera-tiny"):
        load_sam2_tracker(tmp_path / "absent", "cpu")
    (tmp_path / "empty").mkdir()
    with pytest.raises(AnnotatorLoadError, match=r"config\.json"):
        load_sam2_segmenter(tmp_path / "empty", "cpu")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text('{"model_type": "sam2_video"}')
    with pytest.raises(AnnotatorLoadError, match="no model weights"):
        load_sam2_tracker(broken, "cpu")
    (broken / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(AnnotatorLoadError, match="cannot load SAM2"):
        load_sam2_tracker(broken, "cpu")


def test_image_only_snapshot_segments_but_cannot_track(tmp_path: Path) -> None:
    folder = save_tiny_sam2_image_only(tmp_path)
    with pytest.raises(AnnotatorLoadError, match=r"lacks \d+ weights of Sam2VideoModel"):
        load_sam2_tracker(folder, "cpu")
    out = load_sam2_segmenter(folder, "cpu").cut_out(_frames()[0])
    assert out.mode == "RGB" and out.size[0] <= W and out.size[1] <= H


def test_unreadable_preprocessor_config_is_a_load_error(snapshot: Path, tmp_path: Path) -> None:
    folder = tmp_path / "sam2"
    shutil.copytree(snapshot, folder)
    (folder / "preprocessor_config.json").write_text("{not json")
    with pytest.raises(AnnotatorLoadError, match="preprocessor_config"):
        load_sam2_tracker(folder, "cpu")
