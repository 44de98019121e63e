"""OpenPose-18 pose renderings exactly as VACE's annotator draws them (docs/model-inputs.md §5.2).

Pure numpy + OpenCV, no model. Conventions taken as facts from VACE's DWPose drawing code
(`vace/annotators/dwpose/util.py`, `vace/annotators/pose.py`), which its training videos were
rendered with:

* black canvas; 17 limbs as filled ellipses (half-length x stick width 4, rotated along the
  limb, centre and axes truncated to integers), limb i in palette colour i; then the **whole
  canvas is dimmed to 60 %**; then the 18 joints as filled circles of radius 4, joint j in
  palette colour j, full strength;
* a body point is drawn only when its score is > 0.3; a limb only when both ends are drawn;
* face (for `posebodyface`): each of the 68 face points as a white filled circle of radius 3,
  drawn after the body, when its score is >= 0.3 (VACE blanks only points below 0.3) and its
  integer pixel position is >= 1 on both axes (VACE's `x > eps` test); no hands, no feet;
* **the finished drawing has its channels reversed** (VACE flips the canvas with `[..., ::-1]`
  before resizing it back): `render_pose` returns RGB in which every palette colour appears
  with red and blue swapped, so the nose (palette (255, 0, 0)) is blue (0, 0, 255).

`COLOURS` is the palette as drawn (VACE's list; its entries 16 and 17 are (255, 0, 170) and
(255, 0, 85)); `rendered_colour(i)` is what colour i looks like in the RGB rendering.

Keypoints are pixel coordinates (x, y) on the canvas, shape (P, N, 2) for P people (a single
person may be given as (N, 2)); scores have shape (P, N) (or (N,)).
"""

from __future__ import annotations

import math

import cv2
import numpy as np

SCORE_THRESHOLD = 0.3  # points with score <= this are dropped
STICK_WIDTH = 4
JOINT_RADIUS = 4
FACE_RADIUS = 3
LIMB_DIMMING = 0.6
FACE_COLOUR = (255, 255, 255)

OPENPOSE18_NAMES = (
    "nose",
    "neck",
    "right_shoulder",
    "right_elbow",
    "right_wrist",
    "left_shoulder",
    "left_elbow",
    "left_wrist",
    "right_hip",
    "right_knee",
    "right_ankle",
    "left_hip",
    "left_knee",
    "left_ankle",
    "right_eye",
    "left_eye",
    "right_ear",
    "left_ear",
)

# The 17 drawn limbs (0-based joint pairs), in drawing order; limb i has COLOURS[i].
# (OpenPose lists two more, shoulder-ear, which the ControlNet drawing never draws.)
LIMBS: tuple[tuple[int, int], ...] = (
    (1, 2),
    (1, 5),
    (2, 3),
    (3, 4),
    (5, 6),
    (6, 7),
    (1, 8),
    (8, 9),
    (9, 10),
    (1, 11),
    (11, 12),
    (12, 13),
    (1, 0),
    (0, 14),
    (14, 16),
    (0, 15),
    (15, 17),
)

# The 18 palette colours in the order VACE's drawing code lists them; joint j and limb j have
# COLOURS[j]. Drawn as given, then the whole rendering is channel-reversed (`rendered_colour`).
COLOURS: tuple[tuple[int, int, int], ...] = (
    (255, 0, 0),
    (255, 85, 0),
    (255, 170, 0),
    (255, 255, 0),
    (170, 255, 0),
    (85, 255, 0),
    (0, 255, 0),
    (0, 255, 85),
    (0, 255, 170),
    (0, 255, 255),
    (0, 170, 255),
    (0, 85, 255),
    (0, 0, 255),
    (85, 0, 255),
    (170, 0, 255),
    (255, 0, 255),
    (255, 0, 170),
    (255, 0, 85),
)


def rendered_colour(index: int) -> tuple[int, int, int]:
    """Palette colour `index` as it appears in the (channel-reversed) RGB rendering."""
    r, g, b = COLOURS[index]
    return (b, g, r)


# OpenPose-18 joint j comes from COCO-17 keypoint COCO17_TO_OPENPOSE18[j]; the neck (None) is
# the mean of the two shoulders (COCO 5 and 6) and is visible only when both are.
COCO17_TO_OPENPOSE18: tuple[int | None, ...] = (
    0,
    None,
    6,
    8,
    10,
    5,
    7,
    9,
    12,
    14,
    16,
    11,
    13,
    15,
    2,
    1,
    4,
    3,
)


def _as_people(points: np.ndarray, scores: np.ndarray, n: int | None) -> tuple[np.ndarray, ...]:
    pts = np.asarray(points, dtype=np.float64)
    sc = np.asarray(scores, dtype=np.float64)
    if pts.ndim == 2:
        pts, sc = pts[None], sc[None]
    if pts.ndim != 3 or pts.shape[2] != 2 or sc.shape != pts.shape[:2]:
        raise ValueError(
            f"expected keypoints (P, N, 2) and scores (P, N); got {pts.shape}, {sc.shape}"
        )
    if n is not None and pts.shape[1] != n:
        raise ValueError(f"expected {n} keypoints per person, got {pts.shape[1]}")
    return pts, sc


def _visible(pts: np.ndarray, sc: np.ndarray, threshold: float) -> np.ndarray:
    return (sc > threshold) & np.isfinite(pts).all(axis=-1)


def coco17_to_openpose18(
    keypoints: np.ndarray, scores: np.ndarray, threshold: float = SCORE_THRESHOLD
) -> tuple[np.ndarray, np.ndarray]:
    """COCO-17 order (P, 17, 2) / (P, 17) → OpenPose-18 order (P, 18, 2) / (P, 18).

    The neck is the mean of the shoulders; its score is the smaller shoulder score when both
    shoulders are above `threshold`, else 0 (so it is drawn exactly when both are)."""
    pts, sc = _as_people(keypoints, scores, 17)
    out_pts = np.zeros((pts.shape[0], 18, 2))
    out_sc = np.zeros((pts.shape[0], 18))
    for j, src in enumerate(COCO17_TO_OPENPOSE18):
        if src is not None:
            out_pts[:, j] = pts[:, src]
            out_sc[:, j] = sc[:, src]
    out_pts[:, 1] = (pts[:, 5] + pts[:, 6]) / 2.0
    both = (sc[:, 5] > threshold) & (sc[:, 6] > threshold)
    out_sc[:, 1] = np.where(both, np.minimum(sc[:, 5], sc[:, 6]), 0.0)
    return out_pts, out_sc


def draw_body(
    canvas: np.ndarray,
    keypoints: np.ndarray,
    scores: np.ndarray,
    threshold: float = SCORE_THRESHOLD,
) -> np.ndarray:
    """Draw OpenPose-18 skeletons of all people onto `canvas` (H, W, 3 uint8) in place, in
    palette colours as given (not yet channel-reversed).

    Limbs of every person first, then the whole canvas ×0.6, then every joint: pass all people
    in one call (a second call would dim the first call's joints). Returns `canvas`."""
    pts, sc = _as_people(keypoints, scores, 18)
    visible = _visible(pts, sc, threshold)
    for limb, (a, b) in enumerate(LIMBS):
        for person in range(pts.shape[0]):
            if not (visible[person, a] and visible[person, b]):
                continue
            (xa, ya), (xb, yb) = pts[person, a], pts[person, b]
            # VACE's own arithmetic (not math.hypot), so int(length / 2) truncates alike
            length = ((ya - yb) ** 2 + (xa - xb) ** 2) ** 0.5
            angle = math.degrees(math.atan2(ya - yb, xa - xb))
            polygon = cv2.ellipse2Poly(
                (int((xa + xb) / 2), int((ya + yb) / 2)),
                (int(length / 2), STICK_WIDTH),
                int(angle),
                0,
                360,
                1,
            )
            cv2.fillConvexPoly(canvas, np.asarray(polygon, np.int32), COLOURS[limb])
    canvas[...] = (canvas * LIMB_DIMMING).astype(np.uint8)
    for joint in range(18):
        for person in range(pts.shape[0]):
            if visible[person, joint]:
                x, y = pts[person, joint]
                cv2.circle(canvas, (int(x), int(y)), JOINT_RADIUS, COLOURS[joint], thickness=-1)
    return canvas


def draw_face(
    canvas: np.ndarray,
    points: np.ndarray,
    scores: np.ndarray,
    threshold: float = SCORE_THRESHOLD,
) -> np.ndarray:
    """Draw face keypoints (any count per person, normally 68) as white dots, in place.

    A point is drawn when its score is >= `threshold` and its integer position (truncated) is
    at least 1 on both axes, as VACE's face drawing does (points at x or y < 1 are skipped)."""
    pts, sc = _as_people(points, scores, None)
    visible = (sc >= threshold) & np.isfinite(pts).all(axis=-1)
    for person in range(pts.shape[0]):
        for (x, y), ok in zip(pts[person], visible[person], strict=True):
            if ok and int(x) >= 1 and int(y) >= 1:
                cv2.circle(canvas, (int(x), int(y)), FACE_RADIUS, FACE_COLOUR, thickness=-1)
    return canvas


def render_pose(
    height: int,
    width: int,
    body: np.ndarray,
    body_scores: np.ndarray,
    face: np.ndarray | None = None,
    face_scores: np.ndarray | None = None,
    threshold: float = SCORE_THRESHOLD,
) -> np.ndarray:
    """A (height, width, 3) uint8 RGB rendering: bodies, then faces if given, drawn on black,
    then channel-reversed as VACE's renderings are (see the module docstring)."""
    canvas = np.zeros((height, width, 3), np.uint8)
    draw_body(canvas, body, body_scores, threshold)
    if face is not None and face_scores is not None:
        draw_face(canvas, face, face_scores, threshold)
    return np.ascontiguousarray(canvas[..., ::-1])
