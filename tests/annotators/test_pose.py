"""DWPose annotator on tiny ONNX graphs with the real files' names, input/output names and
shapes (yolox_l.onnx: images (1,3,640,640) → output (1,8400,85); dw-ll_ucoco_384.onnx:
input (1,3,384,288) → simcc_x (1,133,576), simcc_y (1,133,768)). Their outputs are constants
(plus 0 × mean(input), so the input is really fed) that encode known boxes and keypoints; the
test then checks the whole decode → crop → SimCC → OpenPose-18 → render chain."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from vace_server.annotators.errors import AnnotatorLoadError  # noqa: E402
from vace_server.annotators.pose import load_pose_annotator  # noqa: E402
from vace_server.annotators.pose_render import COLOURS  # noqa: E402

BOX = (8.0, 4.0, 56.0, 60.0)  # the person, frame pixels (64 × 64 frame, detector ratio 10)
# COCO-17 targets in frame pixels (+0.5 is added so int() truncation is stable)
BODY = {
    0: (32, 12),  # nose
    5: (44, 22),  # left shoulder
    6: (20, 22),
    7: (50, 32),
    8: (14, 32),
    9: (56, 42),
    10: (8, 42),
    11: (40, 40),
    12: (24, 40),
    13: (41, 50),
    14: (23, 50),
    15: (42, 60),
    16: (22, 60),
}
LOW = {1: (4, 4), 2: (60, 4), 3: (4, 20), 4: (60, 20)}  # eyes and ears, score 0.1
FACE_SEEN = {23: (26, 5), 24: (38, 5)}
FACE_HIDDEN_AT = (32, 50)  # every other face point, score 0.1
# OpenPose-18 index of each COCO point above
OPENPOSE = {0: 0, 5: 5, 6: 2, 7: 6, 8: 3, 9: 7, 10: 4, 11: 11, 12: 8, 13: 12, 14: 9, 15: 13, 16: 10}


def _save(path: Path, inputs, outputs, nodes, inits) -> None:
    graph = helper.make_graph(nodes, "tiny", inputs, outputs, initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def _const_graph(path: Path, in_name: str, in_shape, outs: dict[str, np.ndarray]) -> None:
    nodes = [
        helper.make_node("ReduceMean", [in_name], ["mean"], keepdims=0),
        helper.make_node("Mul", ["mean", "zero"], ["nothing"]),
    ]
    inits = [numpy_helper.from_array(np.zeros((), np.float32), "zero")]
    outputs = []
    for name, value in outs.items():
        inits.append(numpy_helper.from_array(value.astype(np.float32), f"{name}_const"))
        nodes.append(helper.make_node("Add", [f"{name}_const", "nothing"], [name]))
        outputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, list(value.shape)))
    inputs = [helper.make_tensor_value_info(in_name, TensorProto.FLOAT, list(in_shape))]
    _save(path, inputs, outputs, nodes, inits)


def _detector_rows(people: bool = True) -> np.ndarray:
    raw = np.zeros((1, 8400, 85), np.float32)
    if not people:
        return raw

    def put(stride: int, gx: int, gy: int, box640, obj: float, cls: dict[int, float]) -> None:
        offset = {8: 0, 16: 80 * 80, 32: 80 * 80 + 40 * 40}[stride]
        row = raw[0, offset + gy * (640 // stride) + gx]
        x0, y0, x1, y1 = box640
        row[0] = (x0 + x1) / 2 / stride - gx
        row[1] = (y0 + y1) / 2 / stride - gy
        row[2], row[3] = np.log((x1 - x0) / stride), np.log((y1 - y0) / stride)
        row[4] = obj
        for c, score in cls.items():
            row[5 + c] = score

    person = tuple(10 * v for v in BOX)
    put(32, 10, 10, person, 0.95, {0: 0.9})  # the person, score 0.855
    put(16, 20, 20, person, 0.9, {0: 0.9})  # duplicate, 0.81: removed by NMS
    put(8, 70, 10, (500, 40, 620, 160), 0.99, {0: 0.05, 1: 0.99})  # a bicycle, not a person
    put(8, 10, 70, (20, 500, 140, 620), 0.5, {0: 0.5})  # a person at 0.25 ≤ 0.3
    return raw


def _simcc(box, keypoints: int = 133) -> tuple[np.ndarray, np.ndarray]:
    """SimCC rows whose argmax decodes to the target frame points under DWPose's crop."""
    x0, y0, x1, y1 = box
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    sw, sh = (x1 - x0) * 1.25, (y1 - y0) * 1.25
    sw, sh = (sw, sw / 0.75) if sw > sh * 0.75 else (sh * 0.75, sh)
    sx, sy = np.zeros((1, keypoints, 576)), np.zeros((1, keypoints, 768))

    def put(k: int, xy, score: float) -> None:
        u = (xy[0] + 0.5 - cx + sw / 2) / sw * 288
        v = (xy[1] + 0.5 - cy + sh / 2) / sh * 384
        sx[0, k, round(2 * u)] = score
        sy[0, k, round(2 * v)] = score

    for k in range(keypoints):
        put(k, FACE_HIDDEN_AT, 0.1)
    for k, xy in BODY.items():
        put(k, xy, 0.9)
    for k, xy in LOW.items():
        put(k, xy, 0.1)
    for k, xy in FACE_SEEN.items():
        if k < keypoints:
            put(k, xy, 0.8)
    return sx, sy


def _write_models(folder: Path, *, people: bool = True, keypoints: int = 133) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    _const_graph(
        folder / "yolox_l.onnx", "images", (1, 3, 640, 640), {"output": _detector_rows(people)}
    )
    sx, sy = _simcc(BOX, keypoints)
    _const_graph(
        folder / "dw-ll_ucoco_384.onnx", "input", (1, 3, 384, 288), {"simcc_x": sx, "simcc_y": sy}
    )
    return folder


@pytest.fixture(scope="module")
def pose_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _write_models(tmp_path_factory.mktemp("pose"))


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
        assert _px(a, BODY[coco]) == COLOURS[openpose], coco
    assert _px(a, (32, 22)) == COLOURS[1]  # neck = mean of the shoulders
    assert _px(a, (17, 27)) == tuple(int(0.6 * c) for c in COLOURS[2])  # limb 2: R upper arm
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
    assert _px(a, BODY[0]) == COLOURS[0]  # the body is still there
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
    folder = _write_models(tmp_path / "pose", people=False)
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
    body_only = _write_models(tmp_path / "coco17", keypoints=17)
    with pytest.raises(AnnotatorLoadError, match="133"):
        load_pose_annotator(body_only, "cpu", with_face=True)
    annotator = load_pose_annotator(body_only, "cpu", with_face=False, render_short_side=None)
    with pytest.raises(AnnotatorLoadError, match="133"):
        annotator.variant(with_face=True)
    a = np.asarray(annotator.annotate([_frame()])[0])
    assert _px(a, BODY[0]) == COLOURS[0]
