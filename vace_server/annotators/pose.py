"""Model-backed pose annotators: DWPose through onnxruntime (docs/model-inputs.md §5.2).

VACE's `posebody` / `posebodyface` run DWPose: a YOLOX-L person detector, then the DW-LL
whole-body estimator (133 COCO-WholeBody keypoints from SimCC outputs) on every person box, and
draw an OpenPose-18 body (plus the 68 face points as white dots) on black. We run the very same
two ONNX files, loaded only from a local folder (the `pose/` folder of ali-vilab/VACE-Annotators,
or yzd-v/DWPose):

    <folder>/yolox_l.onnx           images (1, 3, 640, 640) → (1, 8400, 85) raw YOLOX outputs
    <folder>/dw-ll_ucoco_384.onnx   input (1, 3, 384, 288) → simcc_x (1, 133, 576),
                                                              simcc_y (1, 133, 768)

Why DWPose and not transformers' VitPose: every VitPose checkpoint transformers offers
(usyd-community/vitpose-*, also the ViTPose++ MoE ones, whose head has `num_labels` = 17) predicts
the 17 COCO body keypoints only, so `posebodyface` would have no face; DWPose gives body and face
in one pass and is exactly what VACE's training data was rendered with.

Pipeline facts followed (VACE's `pose.py` and `dwpose/*`): the RGB frame is channel-reversed
to **BGR**, then resized so its short side is 1024 with both sides rounded to ×64 (Lanczos when
enlarging, area when shrinking); **both networks see that BGR working image**. Detector input
letterboxed top-left onto 114 gray, raw 0..255 values, no normalisation; boxes decoded on
strides 8/16/32; person score = objectness × class-0 score > 0.3; NMS IoU 0.45; no person found
→ the whole image is the box. Each box is padded ×1.25, widened to the estimator's aspect ratio,
cropped with the affine warp built from three float32 point pairs, normalised with the ImageNet
mean/std applied in array order (to B, G, R: VACE's arrangement, kept); SimCC argmax / split
ratio 2 gives the location, min(max_x, max_y) the score. Keypoints are normalised by the
working size and scaled back when drawing (as VACE does, so integer truncation matches). The
rendering (pose_render: VACE's palette, then channels reversed) is made at the working size and
resized back to the frame (Lanczos when the frame is larger, area otherwise).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image

from vace_server.annotators.errors import AnnotatorLoadError
from vace_server.annotators.pose_render import coco17_to_openpose18, render_pose

log = logging.getLogger(__name__)

DETECTOR_FILE = "yolox_l.onnx"
ESTIMATOR_FILE = "dw-ll_ucoco_384.onnx"
EXPECTED = (
    f"the DWPose ONNX files {DETECTOR_FILE} (YOLOX-L person detector, ≈217 MB) and "
    f"{ESTIMATOR_FILE} (DW-LL whole-body, 133 keypoints, ≈134 MB), as in the pose/ folder of "
    "ali-vilab/VACE-Annotators or in yzd-v/DWPose"
)

DETECTOR_INPUT = (640, 640)  # (h, w) used when the model's input shape is dynamic
ESTIMATOR_INPUT = (384, 288)
YOLOX_STRIDES = (8, 16, 32)
PAD_VALUE = 114
PERSON_SCORE = 0.3
NMS_IOU = 0.45
BOX_PADDING = 1.25
MEAN = np.array([123.675, 116.28, 103.53])  # applied in array order, to B, G, R (as VACE)
STD = np.array([58.395, 57.12, 57.375])
RENDER_SHORT_SIDE = 1024
BODY = slice(0, 17)
FACE = slice(23, 91)  # COCO-WholeBody: 17 body, 6 feet, 68 face, 2 × 21 hands


def _providers(device: str) -> list[Any]:
    import onnxruntime as ort

    dev = device.strip().lower()
    if dev.startswith("cuda"):
        index = int(dev.split(":", 1)[1]) if ":" in dev else 0
        if "CUDAExecutionProvider" in ort.get_available_providers():
            return [("CUDAExecutionProvider", {"device_id": index}), "CPUExecutionProvider"]
        log.warning("onnxruntime has no CUDA provider (install onnxruntime-gpu); pose runs on CPU")
    return ["CPUExecutionProvider"]


def _input_hw(session: Any, default: tuple[int, int]) -> tuple[int, int]:
    shape = session.get_inputs()[0].shape
    if len(shape) == 4 and isinstance(shape[2], int) and isinstance(shape[3], int):
        return int(shape[2]), int(shape[3])
    return default


def render_size(height: int, width: int, short_side: int | None) -> tuple[int, int]:
    """VACE's working size: short side scaled to `short_side`, both sides rounded to ×64."""
    if short_side is None:
        return height, width
    k = short_side / min(height, width)
    return (
        max(64, int(np.round(height * k / 64.0)) * 64),
        max(64, int(np.round(width * k / 64.0)) * 64),
    )


def decode_yolox(raw: np.ndarray, input_hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Raw YOLOX rows (A, 5 + classes) → (A, 4) xyxy boxes in input pixels and (A,) person
    scores (objectness × class 0)."""
    h, w = input_hw
    grids, strides = [], []
    for stride in YOLOX_STRIDES:
        ys, xs = np.mgrid[0 : h // stride, 0 : w // stride]
        grids.append(np.stack([xs.ravel(), ys.ravel()], axis=1))
        strides.append(np.full((xs.size, 1), stride))
    grid, stride_col = np.concatenate(grids), np.concatenate(strides)
    if raw.ndim != 2 or raw.shape[0] != len(grid) or raw.shape[1] < 6:
        raise RuntimeError(f"unexpected detector output {raw.shape}; expected ({len(grid)}, 85)")
    centre = (raw[:, :2] + grid) * stride_col
    size = np.exp(np.minimum(raw[:, 2:4], 30.0)) * stride_col
    boxes = np.concatenate([centre - size / 2.0, centre + size / 2.0], axis=1)
    return boxes, raw[:, 4] * raw[:, 5]


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float = NMS_IOU) -> np.ndarray:
    """Greedy NMS (inclusive +1 pixel areas, as YOLOX's demo); kept indices, best first."""
    x1, y1, x2, y2 = boxes.T
    areas = (x2 - x1 + 1) * (y2 - y1 + 1)
    order = np.argsort(-scores, kind="stable")
    keep: list[int] = []
    while order.size:
        i, rest = int(order[0]), order[1:]
        keep.append(i)
        iw = np.maximum(0.0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]) + 1)
        ih = np.maximum(0.0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]) + 1)
        inter = iw * ih
        order = rest[inter / (areas[i] + areas[rest] - inter) <= iou]
    return np.asarray(keep, dtype=np.int64)


def _warp_matrix(centre: np.ndarray, src_w: float, out_wh: tuple[int, int]) -> np.ndarray:
    """2×3 affine map of the box (centre, width `src_w`) onto the estimator input, built as
    VACE builds it: three float32 point pairs through cv2.getAffineTransform (no rotation)."""
    out_w, out_h = out_wh
    src = np.zeros((3, 2), np.float32)
    src[0] = centre
    src[1] = centre + np.array([0.0, src_w * -0.5])
    dst = np.zeros((3, 2), np.float32)
    dst[0] = (out_w * 0.5, out_h * 0.5)
    dst[1] = dst[0] + np.array([0.0, out_w * -0.5], np.float32)
    for pts in (src, dst):  # third point: (pts[0] - pts[1]) turned 90° about pts[1]
        d = pts[0] - pts[1]
        pts[2] = pts[1] + np.array([-d[1], d[0]], np.float32)
    return cv2.getAffineTransform(src, dst)


def simcc_decode(simcc_x: np.ndarray, simcc_y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, K, Lx), (N, K, Ly) → argmax locations (N, K, 2) in SimCC bins and scores (N, K)
    = min of the two maxima; locations of scores ≤ 0 become -1."""
    locs = np.stack([simcc_x.argmax(-1), simcc_y.argmax(-1)], axis=-1).astype(np.float64)
    scores = np.minimum(simcc_x.max(-1), simcc_y.max(-1)).astype(np.float64)
    locs[scores <= 0] = -1.0
    return locs, scores


class DWPoseAnnotator:
    """FrameAnnotator: frames → OpenPose-18 renderings (with white face dots if `with_face`)."""

    backend = "model"

    def __init__(
        self,
        detector: Any,
        estimator: Any,
        *,
        with_face: bool,
        render_short_side: int | None = RENDER_SHORT_SIDE,
    ) -> None:
        self.detector = detector
        self.estimator = estimator
        self.with_face = with_face
        self.render_short_side = render_short_side
        self.name = "dwpose-body-face" if with_face else "dwpose-body"
        self._det_hw = _input_hw(detector, DETECTOR_INPUT)
        self._est_hw = _input_hw(estimator, ESTIMATOR_INPUT)
        batch = estimator.get_inputs()[0].shape[0]
        self._est_batched = not isinstance(batch, int)  # dynamic batch: all boxes in one run
        names = [o.name for o in estimator.get_outputs()]
        self._simcc = ["simcc_x", "simcc_y"] if {"simcc_x", "simcc_y"} <= set(names) else names[:2]

    def variant(self, *, with_face: bool) -> DWPoseAnnotator:
        """The other control (posebody / posebodyface) sharing these loaded sessions.

        Raises AnnotatorLoadError for faces from an estimator without the 133 whole-body points."""
        if with_face:
            _check_face_points(self.estimator, "the loaded pose estimator")
        return DWPoseAnnotator(
            self.detector,
            self.estimator,
            with_face=with_face,
            render_short_side=self.render_short_side,
        )

    def detect_people(self, bgr: np.ndarray) -> np.ndarray:
        """(N, 4) xyxy person boxes in pixels of the BGR image, best first (N may be 0)."""
        h, w = bgr.shape[:2]
        ih, iw = self._det_hw
        r = min(ih / h, iw / w)
        rh, rw = max(1, int(h * r)), max(1, int(w * r))
        padded = np.full((ih, iw, 3), PAD_VALUE, np.uint8)
        padded[:rh, :rw] = cv2.resize(
            np.ascontiguousarray(bgr), (rw, rh), interpolation=cv2.INTER_LINEAR
        )
        blob = padded.transpose(2, 0, 1)[None].astype(np.float32)
        raw = self.detector.run(None, {self.detector.get_inputs()[0].name: blob})[0]
        boxes, scores = decode_yolox(np.asarray(raw)[0], (ih, iw))
        keep = scores > PERSON_SCORE
        boxes, scores = boxes[keep] / r, scores[keep]
        return boxes[nms(boxes, scores)] if len(boxes) else np.zeros((0, 4))

    def _crop(self, bgr: np.ndarray, box: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Affine crop of one padded box at the estimator's size → (CHW input, centre, scale)."""
        ih, iw = self._est_hw
        x0, y0, x1, y1 = (float(v) for v in box)
        centre = np.array([(x0 + x1) / 2.0, (y0 + y1) / 2.0])
        sw, sh = (x1 - x0) * BOX_PADDING, (y1 - y0) * BOX_PADDING
        aspect = iw / ih
        sw, sh = (sw, sw / aspect) if sw > sh * aspect else (sh * aspect, sh)
        crop = cv2.warpAffine(
            np.ascontiguousarray(bgr),
            _warp_matrix(centre, sw, (iw, ih)),
            (iw, ih),
            flags=cv2.INTER_LINEAR,
        )
        # normalised in float64, handed to the network as float32 (what ORT makes of VACE's input)
        chw = ((crop.astype(np.float64) - MEAN) / STD).astype(np.float32).transpose(2, 0, 1)
        return chw, centre, np.array([sw, sh])

    def estimate(self, bgr: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Whole-body keypoints (N, K, 2) in image pixels and scores (N, K), one row per box."""
        crops = [self._crop(bgr, box) for box in boxes]
        inputs = np.stack([c[0] for c in crops]).astype(np.float32)
        in_name = self.estimator.get_inputs()[0].name
        chunks = [inputs] if self._est_batched else [inputs[i : i + 1] for i in range(len(inputs))]
        xs, ys = [], []
        for chunk in chunks:
            sx, sy = self.estimator.run(self._simcc, {in_name: chunk})
            xs.append(np.asarray(sx))
            ys.append(np.asarray(sy))
        simcc_x, simcc_y = np.concatenate(xs), np.concatenate(ys)
        locs, scores = simcc_decode(simcc_x, simcc_y)
        ih, iw = self._est_hw
        ratio = np.array([simcc_x.shape[-1] / iw, simcc_y.shape[-1] / ih])
        input_wh = np.array([iw, ih], np.float64)
        keypoints = np.empty_like(locs)
        for n, (_, centre, scale) in enumerate(crops):
            keypoints[n] = locs[n] / ratio / input_wh * scale + centre - scale / 2.0
        return keypoints, scores

    def working_image(self, rgb: np.ndarray) -> np.ndarray:
        """The frame as both networks see it: BGR, short side at `render_short_side` (×64)."""
        bgr = np.ascontiguousarray(rgb[..., ::-1])
        if self.render_short_side is None:
            return bgr
        h, w = rgb.shape[:2]
        ch, cw = render_size(h, w, self.render_short_side)
        if (ch, cw) == (h, w):
            return bgr
        enlarge = self.render_short_side / min(h, w) > 1
        return cv2.resize(
            bgr, (cw, ch), interpolation=cv2.INTER_LANCZOS4 if enlarge else cv2.INTER_AREA
        )

    def annotate_array(self, rgb: np.ndarray) -> np.ndarray:
        """One (H, W, 3) uint8 RGB frame → its (H, W, 3) uint8 pose rendering."""
        h, w = rgb.shape[:2]
        work = self.working_image(rgb)
        ch, cw = work.shape[:2]
        boxes = self.detect_people(work)
        if len(boxes) == 0:
            boxes = np.array([[0.0, 0.0, float(cw), float(ch)]])
        keypoints, scores = self.estimate(work, boxes)
        if self.with_face and keypoints.shape[1] < FACE.stop:
            raise RuntimeError(f"pose model gives {keypoints.shape[1]} keypoints; faces need 133")
        # VACE stores keypoints divided by the canvas size and multiplies them back to draw;
        # the round trip is kept so that int() truncation lands on the same pixels.
        size = np.array([float(cw), float(ch)])
        keypoints = keypoints / size * size
        body, body_scores = coco17_to_openpose18(keypoints[:, BODY], scores[:, BODY])
        face = keypoints[:, FACE] if self.with_face else None
        face_scores = scores[:, FACE] if self.with_face else None
        canvas = render_pose(ch, cw, body, body_scores, face, face_scores)
        if (ch, cw) == (h, w):
            return canvas
        upscale = h * w > ch * cw
        return cv2.resize(
            canvas, (w, h), interpolation=cv2.INTER_LANCZOS4 if upscale else cv2.INTER_AREA
        )

    def annotate(self, frames: Sequence[Image.Image]) -> list[Image.Image]:
        return [Image.fromarray(self.annotate_array(np.asarray(f.convert("RGB")))) for f in frames]


def _check_face_points(estimator: Any, what: str) -> None:
    keypoints = estimator.get_outputs()[0].shape[1]
    if isinstance(keypoints, int) and keypoints < FACE.stop:
        raise AnnotatorLoadError(
            f"{what} predicts {keypoints} keypoints, not the 133 whole-body ones a face "
            f"rendering needs; expected {EXPECTED}"
        )


def _session(path: Path, device: str) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), sess_options=options, providers=_providers(device))


def load_pose_annotator(
    folder: Path,
    device: str,
    *,
    with_face: bool,
    render_short_side: int | None = RENDER_SHORT_SIDE,
) -> DWPoseAnnotator:
    """Load DWPose from `folder` (never downloads); `device` "cpu" or "cuda[:N]" (CUDA needs
    onnxruntime-gpu, else CPU with a warning). `variant()` gives the other control sharing the
    sessions. Raises AnnotatorLoadError when the folder is missing, incomplete or unloadable."""
    folder = Path(folder)
    if not folder.is_dir():
        raise AnnotatorLoadError(
            f"pose checkpoint folder {folder} does not exist; expected {EXPECTED}"
        )
    missing = [n for n in (DETECTOR_FILE, ESTIMATOR_FILE) if not (folder / n).is_file()]
    if missing:
        raise AnnotatorLoadError(
            f"pose checkpoint folder {folder} is incomplete (missing {', '.join(missing)}); "
            f"expected {EXPECTED}"
        )
    try:
        detector = _session(folder / DETECTOR_FILE, device)
        estimator = _session(folder / ESTIMATOR_FILE, device)
    except ImportError as exc:
        raise AnnotatorLoadError(f"pose needs the onnxruntime package: {exc}") from exc
    except Exception as exc:  # a corrupt / non-ONNX file is a configuration problem
        raise AnnotatorLoadError(
            f"cannot load the pose models from {folder}: {exc}; expected {EXPECTED}"
        ) from exc
    outputs = estimator.get_outputs()
    det_out = detector.get_outputs()[0].shape
    if len(outputs) < 2 or len(outputs[0].shape) != 3 or len(det_out) != 3:
        raise AnnotatorLoadError(
            f"{folder} holds ONNX files of another shape (detector output {det_out}, "
            f"{len(outputs)} estimator outputs); expected {EXPECTED}"
        )
    if with_face:
        _check_face_points(estimator, str(folder / ESTIMATOR_FILE))
    annotator = DWPoseAnnotator(
        detector, estimator, with_face=with_face, render_short_side=render_short_side
    )
    log.info("pose annotator %s loaded from %s (%s)", annotator.name, folder, device)
    return annotator
