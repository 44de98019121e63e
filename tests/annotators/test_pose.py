"""DWPose annotator on tiny ONNX graphs with the real files' names, input/output names and
shapes (built by tests/support/tiny_pose.py); the test checks the whole decode → crop → SimCC →
OpenPose-18 → render chain against the keypoints those graphs encode."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from tests.support.tiny_pose import (
    BODY,
    BOX,
    FACE_HIDDEN_AT,
    FACE_SEEN,
    LOW,
    OPENPOSE,
    write_tiny_pose_models,
)
from vace_server.annotators.errors import AnnotatorLoadError
from vace_server.annotators.pose import DWPoseAnnotator, load_pose_annotator
from vace_server.annotators.pose_render import rendered_colour


@pytest.fixture(scope="module")
def pose_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_pose_models(tmp_path_factory.mktemp("pose"))


def _frame(size: tuple[int, int] = (64, 64)) -> Image.Image:
    rng = np.random.default_rng(1)
    return Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))


def _px(a: np.ndarray, xy) -> tuple[int, ...]:
    return tuple(int(v) for v in a[xy[1], xy[0]])


def test_detector_decoding_filters_classes_scores_and_duplicates(pose_folder: Path) -> None:
    annotator = load_pose_annotator(pose_folder, "cpu", with_face=False)
    boxes = annotator.detect_people(np.asarray(_frame()))
    assert boxes.shape == (1, 4)
    np.testing.assert_allclose(boxes[0], BOX, atol=1e-3)


def test_body_rendering_through_the_whole_chain(pose_folder: Path) -> None:
    annotator = load_pose_annotator(pose_folder, "cpu", with_face=False, render_short_side=None)
    assert annotator.name == "dwpose-body" and annotator.backend == "model"
    frames = [_frame(), _frame()]
    out = annotator.annotate(frames)
    assert len(out) == 2 and all(o.size == (64, 64) and o.mode == "RGB" for o in out)
    a = np.asarray(out[0])
    for coco, openpose in OPENPOSE.items():
        assert _px(a, BODY[coco]) == rendered_colour(openpose), coco
    assert _px(a, (32, 22)) == rendered_colour(1)  # neck = mean of the shoulders
    assert _px(a, (17, 27)) == tuple(
        int(0.6 * c) for c in rendered_colour(2)
    )  # limb 2: R upper arm
    for xy in [*LOW.values(), *FACE_SEEN.values(), FACE_HIDDEN_AT]:
        assert _px(a, xy) == (0, 0, 0), xy  # dropped points and faces: nothing drawn
    assert _px(a, (0, 63)) == (0, 0, 0) and _px(a, (63, 0)) == (0, 0, 0)
    assert not (a == 255).all(axis=2).any()  # no white anywhere


def test_face_dots_only_for_posebodyface(pose_folder: Path) -> None:
    body = load_pose_annotator(pose_folder, "cpu", with_face=True, render_short_side=None)
    assert body.name == "dwpose-body-face"
    a = np.asarray(body.annotate([_frame()])[0])
    for xy in FACE_SEEN.values():
        assert _px(a, xy) == (255, 255, 255)
    assert _px(a, FACE_HIDDEN_AT) == (0, 0, 0)  # score 0.1
    assert _px(a, BODY[0]) == rendered_colour(0)  # the body is still there
    other = body.variant(with_face=False)
    assert other.detector is body.detector and other.name == "dwpose-body"
    b = np.asarray(other.annotate([_frame()])[0])
    assert _px(b, FACE_SEEN[23]) == (0, 0, 0)


def test_default_render_size_is_resized_back(pose_folder: Path) -> None:
    annotator = load_pose_annotator(pose_folder, "cpu", with_face=True)
    frame = _frame((64, 48))
    out = annotator.annotate([frame])
    assert len(out) == 1 and out[0].size == (64, 48)
    a = np.asarray(out[0])
    assert a.any()
    assert _px(a, (0, 47)) == (0, 0, 0) and _px(a, (63, 47)) == (0, 0, 0)


def test_nobody_detected_uses_the_whole_frame(tmp_path: Path) -> None:
    folder = write_tiny_pose_models(tmp_path / "pose", people=False)
    annotator = load_pose_annotator(folder, "cpu", with_face=False, render_short_side=None)
    assert annotator.detect_people(np.asarray(_frame())).shape == (0, 4)
    a = np.asarray(annotator.annotate([_frame()])[0])
    assert a.any()  # the keypoints were estimated in the whole-frame box and drawn


def test_missing_folder_and_files(tmp_path: Path) -> None:
    with pytest.raises(AnnotatorLoadError, match="does not exist") as info:
        load_pose_annotator(tmp_path / "nope", "cpu", with_face=True)
    assert "yolox_l.onnx" in str(info.value) and "dw-ll_ucoco_384.onnx" in str(info.value)
    (tmp_path / "yolox_l.onnx").write_bytes(b"x")
    with pytest.raises(AnnotatorLoadError, match=r"missing dw-ll_ucoco_384\.onnx"):
        load_pose_annotator(tmp_path, "cpu", with_face=False)


def test_corrupt_or_body_only_models_are_load_errors(tmp_path: Path) -> None:
    (tmp_path / "yolox_l.onnx").write_bytes(b"not onnx")
    (tmp_path / "dw-ll_ucoco_384.onnx").write_bytes(b"not onnx")
    with pytest.raises(AnnotatorLoadError, match="cannot load the pose models"):
        load_pose_annotator(tmp_path, "cpu", with_face=False)
    body_only = write_tiny_pose_models(tmp_path / "coco17", keypoints=17)
    with pytest.raises(AnnotatorLoadError, match="133"):
        load_pose_annotator(body_only, "cpu", with_face=True)
    annotator = load_pose_annotator(body_only, "cpu", with_face=False, render_short_side=None)
    with pytest.raises(AnnotatorLoadError, match="133"):
        annotator.variant(with_face=True)
    a = np.asarray(annotator.annotate([_frame()])[0])
    assert _px(a, BODY[0]) == rendered_colour(0)


class _Recording:
    """The real ONNX session, remembering every input it is fed."""

    def __init__(self, session) -> None:
        self.session = session
        self.fed: list[np.ndarray] = []

    def get_inputs(self):
        return self.session.get_inputs()

    def get_outputs(self):
        return self.session.get_outputs()

    def run(self, names, feed):
        self.fed.append(np.asarray(next(iter(feed.values()))))
        return self.session.run(names, feed)


def test_both_networks_receive_bgr_as_in_vace(pose_folder: Path) -> None:
    loaded = load_pose_annotator(pose_folder, "cpu", with_face=False, render_short_side=None)
    detector, estimator = _Recording(loaded.detector), _Recording(loaded.estimator)
    annotator = DWPoseAnnotator(detector, estimator, with_face=False, render_short_side=None)
    rgb = np.zeros((64, 64, 3), np.uint8)
    rgb[...] = (200, 100, 30)  # R, G, B
    annotator.annotate_array(rgb)
    (blob,) = detector.fed
    assert blob.shape == (1, 3, 640, 640)
    assert [blob[0, c, 320, 320] for c in range(3)] == [30, 100, 200]  # B, G, R
    (crops,) = estimator.fed
    centre = crops[0, :, 192, 144]
    expected = (np.array([30, 100, 200]) - [123.675, 116.28, 103.53]) / [58.395, 57.12, 57.375]
    np.testing.assert_allclose(centre, expected, rtol=1e-6)


def test_working_image_is_bgr_at_vaces_resolution(pose_folder: Path) -> None:
    annotator = load_pose_annotator(pose_folder, "cpu", with_face=False)
    rgb = np.zeros((48, 64, 3), np.uint8)
    rgb[...] = (200, 100, 30)
    work = annotator.working_image(rgb)
    # short side 48 -> 1024, long side 64 * 1024 / 48 = 1365.3 -> round(21.33) * 64 = 1344
    assert work.shape == (1024, 1344, 3)
    assert (work == (30, 100, 200)).all()  # BGR
    big = np.zeros((2048, 3000, 3), np.uint8)
    assert annotator.working_image(big).shape == (1024, 1472, 3)  # 1500 -> 23 * 64
