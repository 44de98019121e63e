"""Tiny DWPose stand-ins: ONNX graphs with the real files' names, input/output names and
shapes (yolox_l.onnx: images (1,3,640,640) → output (1,8400,85); dw-ll_ucoco_384.onnx:
input (1,3,384,288) → simcc_x (1,133,576), simcc_y (1,133,768)). Their outputs are constants
(plus 0 × mean(input), so the input is really fed) that encode known boxes and keypoints; the
test then checks the whole decode → crop → SimCC → OpenPose-18 → render chain."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

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


def write_tiny_pose_models(folder: Path, *, people: bool = True, keypoints: int = 133) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    _const_graph(
        folder / "yolox_l.onnx", "images", (1, 3, 640, 640), {"output": _detector_rows(people)}
    )
    sx, sy = _simcc(BOX, keypoints)
    _const_graph(
        folder / "dw-ll_ucoco_384.onnx", "input", (1, 3, 384, 288), {"simcc_x": sx, "simcc_y": sy}
    )
    return folder
