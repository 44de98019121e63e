from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from vace_server.annotators.pose_render import (
    COCO17_TO_OPENPOSE18,
    COLOURS,
    LIMBS,
    coco17_to_openpose18,
    draw_body,
    draw_face,
    render_pose,
    rendered_colour,
)

NECK, R_SHOULDER, NOSE = 1, 2, 0


def _person(points: dict[int, tuple[float, float]], score: float = 0.9):
    kps = np.zeros((18, 2))
    scores = np.zeros(18)
    for j, xy in points.items():
        kps[j] = xy
        scores[j] = score
    return kps, scores


def _px(canvas: np.ndarray, x: int, y: int) -> tuple[int, ...]:
    return tuple(int(v) for v in canvas[y, x])


def _dim(colour: tuple[int, int, int]) -> tuple[int, ...]:
    return tuple(int(c * 0.6) for c in colour)


# VACE's palette as its drawing code lists it (vace/annotators/dwpose/util.py, draw_bodypose),
# and its limb list (1-based joint pairs, the first 17 drawn).
VACE_PALETTE = [
    [255, 0, 0], [255, 85, 0], [255, 170, 0], [255, 255, 0], [170, 255, 0], [85, 255, 0],
    [0, 255, 0], [0, 255, 85], [0, 255, 170], [0, 255, 255], [0, 170, 255], [0, 85, 255],
    [0, 0, 255], [85, 0, 255], [170, 0, 255], [255, 0, 255], [255, 0, 170], [255, 0, 85],
]  # fmt: skip
VACE_LIMBS = [
    [2, 3], [2, 6], [3, 4], [4, 5], [6, 7], [7, 8], [2, 9], [9, 10], [10, 11], [2, 12],
    [12, 13], [13, 14], [2, 1], [1, 15], [15, 17], [1, 16], [16, 18],
]  # fmt: skip


def _vace_rgb(colour: list[int], dim: bool = False) -> tuple[int, ...]:
    """What a palette colour becomes in VACE's saved RGB video: the canvas is flipped with
    [..., ::-1] after drawing, so red and blue swap; limbs are dimmed to int(0.6 c) first."""
    drawn = [int(c * 0.6) for c in colour] if dim else colour
    return tuple(drawn[::-1])


def test_palette_and_limbs_are_vaces() -> None:
    assert [list(c) for c in COLOURS] == VACE_PALETTE
    assert COLOURS[16] == (255, 0, 170) and COLOURS[17] == (255, 0, 85)  # ears: not swapped
    assert [[a + 1, b + 1] for a, b in LIMBS] == VACE_LIMBS
    assert rendered_colour(0) == (0, 0, 255)  # the nose is blue in the rendering
    assert rendered_colour(12) == (255, 0, 0)


@pytest.mark.parametrize("limb", range(17))
def test_each_limb_and_its_joints_render_in_vaces_colours(limb: int) -> None:
    a, b = LIMBS[limb]
    kps, scores = _person({a: (10.5, 16.5), b: (40.5, 16.5)})
    out = render_pose(32, 52, kps[None], scores[None])
    assert _px(out, 25, 16) == _vace_rgb(VACE_PALETTE[limb], dim=True)  # mid-limb
    assert _px(out, 25, 20) == _vace_rgb(VACE_PALETTE[limb], dim=True)  # stick width 4
    assert _px(out, 25, 21) == (0, 0, 0)
    assert _px(out, 10, 16) == _vace_rgb(VACE_PALETTE[a])  # joints, full colour
    assert _px(out, 40, 16) == _vace_rgb(VACE_PALETTE[b])


def test_eye_ear_limbs_and_ears_use_vaces_entries_16_and_17() -> None:
    # limb 14: right eye (14) -> right ear (16); limb 16: left eye (15) -> left ear (17)
    kps, scores = _person({14: (8.5, 8.5), 16: (8.5, 40.5), 15: (40.5, 8.5), 17: (40.5, 40.5)})
    out = render_pose(50, 50, kps[None], scores[None])
    assert _px(out, 8, 24) == _vace_rgb(VACE_PALETTE[14], dim=True) == (153, 0, 102)
    assert _px(out, 40, 24) == _vace_rgb(VACE_PALETTE[16], dim=True) == (102, 0, 153)
    assert _px(out, 8, 40) == _vace_rgb(VACE_PALETTE[16]) == (170, 0, 255)  # right ear
    assert _px(out, 40, 40) == _vace_rgb(VACE_PALETTE[17]) == (85, 0, 255)  # left ear


def _vace_reference(height: int, width: int, people: list[dict[int, tuple[float, float]]]):
    """VACE's draw_bodypose restated from its description: candidate x/W and y/H, each limb an
    ellipse2Poly at (int(mean x), int(mean y)), axes (int(len / 2), 4), int(degrees(atan2(dy,
    dx))), filled; canvas * 0.6; joints radius 4; then the canvas reversed."""
    canvas = np.zeros((height, width, 3), np.uint8)
    for i in range(17):
        for person in people:
            j0, j1 = (v - 1 for v in VACE_LIMBS[i])
            if j0 not in person or j1 not in person:
                continue
            ys = [person[j][1] / height * float(height) for j in (j0, j1)]
            xs = [person[j][0] / width * float(width) for j in (j0, j1)]
            length = ((ys[0] - ys[1]) ** 2 + (xs[0] - xs[1]) ** 2) ** 0.5
            angle = math.degrees(math.atan2(ys[0] - ys[1], xs[0] - xs[1]))
            polygon = cv2.ellipse2Poly(
                (int(np.mean(xs)), int(np.mean(ys))), (int(length / 2), 4), int(angle), 0, 360, 1
            )
            cv2.fillConvexPoly(canvas, np.asarray(polygon), VACE_PALETTE[i])
    canvas = (canvas * 0.6).astype(np.uint8)
    for j in range(18):
        for person in people:
            if j in person:
                x, y = person[j]
                cv2.circle(canvas, (int(x), int(y)), 4, VACE_PALETTE[j], thickness=-1)
    return canvas[..., ::-1]


def test_whole_rendering_equals_vaces_drawing_of_fixed_keypoints() -> None:
    people = [
        {0: (30.2, 10.7), 1: (31.9, 24.1), 2: (20.4, 25.3), 3: (13.8, 38.6), 4: (9.1, 52.2),
         5: (43.7, 24.9), 6: (50.3, 37.5), 7: (57.8, 49.9), 8: (24.6, 55.5), 9: (22.1, 72.3),
         10: (21.7, 88.4), 11: (38.8, 56.1), 12: (41.2, 73.7), 13: (43.9, 89.6),
         14: (27.3, 8.1), 15: (34.6, 8.3), 16: (23.5, 10.2), 17: (38.9, 10.9)},
        {0: (80.5, 20.5), 1: (80.5, 32.5), 2: (72.0, 33.0), 5: (89.0, 33.0), 8: (75.3, 60.0)},
    ]  # fmt: skip
    kps = np.zeros((2, 18, 2))
    scores = np.zeros((2, 18))
    for p, person in enumerate(people):
        for j, xy in person.items():
            kps[p, j], scores[p, j] = xy, 0.9
    out = render_pose(96, 100, kps, scores)
    np.testing.assert_array_equal(out, _vace_reference(96, 100, people))


def test_single_limb_is_a_dimmed_ellipse_with_full_colour_joints() -> None:
    canvas = np.zeros((32, 32, 3), np.uint8)
    kps, scores = _person({NECK: (8.5, 16.5), R_SHOULDER: (24.5, 16.5)})
    out = draw_body(canvas, kps, scores)
    assert out is canvas
    # limb 0 = neck→right shoulder, colour 0 dimmed to 60 %, 16 px long, stick width 4
    assert _px(canvas, 16, 16) == _dim(COLOURS[0]) == (153, 0, 0)
    assert _px(canvas, 16, 13) == (153, 0, 0)  # 3 px off the axis: inside the ellipse
    assert _px(canvas, 16, 21) == (0, 0, 0)  # 5 px off the axis: outside
    # joints: radius 4, full colour, drawn over the limb
    assert _px(canvas, 8, 16) == COLOURS[NECK] == (255, 85, 0)
    assert _px(canvas, 24, 16) == COLOURS[R_SHOULDER] == (255, 170, 0)
    assert _px(canvas, 24, 20) == COLOURS[R_SHOULDER]  # on the joint circle's rim
    assert _px(canvas, 24, 21) == (0, 0, 0)
    assert _px(canvas, 0, 0) == (0, 0, 0)


def test_vertical_limb_is_rotated() -> None:
    canvas = np.zeros((32, 32, 3), np.uint8)
    kps, scores = _person({NECK: (16.5, 20.5), NOSE: (16.5, 4.5)})
    draw_body(canvas, kps, scores)
    assert _px(canvas, 16, 12) == _dim(COLOURS[12])  # limb 12 = neck→nose, (0, 0, 153)
    assert _px(canvas, 13, 12) == _dim(COLOURS[12])
    assert _px(canvas, 11, 12) == (0, 0, 0)
    assert _px(canvas, 16, 4) == COLOURS[NOSE]


def test_points_at_or_below_threshold_are_skipped_with_their_limbs() -> None:
    canvas = np.zeros((32, 32, 3), np.uint8)
    kps, scores = _person({NECK: (8.5, 16.5), R_SHOULDER: (24.5, 16.5)})
    scores[R_SHOULDER] = 0.3  # "score ≤ 0.3 dropped"
    draw_body(canvas, kps, scores)
    assert _px(canvas, 16, 16) == (0, 0, 0)
    assert _px(canvas, 24, 16) == (0, 0, 0)
    assert _px(canvas, 8, 16) == COLOURS[NECK]
    kps[NECK] = (np.nan, np.nan)  # non-finite = invisible as well
    canvas[:] = 0
    draw_body(canvas, kps, np.full(18, 0.9))
    assert _px(canvas, 8, 16) == (0, 0, 0)


def test_every_joint_has_its_colour() -> None:
    canvas = np.zeros((200, 200, 3), np.uint8)
    points = {j: (10.5 + 10 * j, 20.5 + 9 * j) for j in range(18)}
    kps, scores = _person(points)
    draw_body(canvas, kps, scores)
    for j, (x, y) in points.items():
        assert _px(canvas, int(x), int(y)) == COLOURS[j], j


def test_two_people_in_one_call_keep_full_joint_colours() -> None:
    canvas = np.zeros((32, 64, 3), np.uint8)
    a, sa = _person({NECK: (8.5, 16.5), R_SHOULDER: (24.5, 16.5)})
    b, sb = _person({NECK: (40.5, 16.5), R_SHOULDER: (56.5, 16.5)})
    draw_body(canvas, np.stack([a, b]), np.stack([sa, sb]))
    for x in (8, 40):
        assert _px(canvas, x, 16) == COLOURS[NECK]
    for x in (16, 48):
        assert _px(canvas, x, 16) == (153, 0, 0)


def test_face_points_are_white_dots_radius_3() -> None:
    canvas = np.zeros((20, 20, 3), np.uint8)
    pts = np.array([[5.5, 5.5], [14.5, 14.5]])
    draw_face(canvas, pts, np.array([0.9, 0.2]))
    assert _px(canvas, 5, 5) == (255, 255, 255)
    assert _px(canvas, 5, 8) == (255, 255, 255)
    assert _px(canvas, 5, 9) == (0, 0, 0)
    assert _px(canvas, 14, 14) == (0, 0, 0)  # score 0.2: skipped
    assert set(np.unique(canvas)) <= {0, 255}


def test_face_points_follow_vaces_visibility_rule() -> None:
    # VACE blanks face points with score < 0.3 (so exactly 0.3 is drawn) and skips points whose
    # integer position is 0 on either axis.
    canvas = np.zeros((20, 20, 3), np.uint8)
    pts = np.array([[5.5, 5.5], [14.5, 14.5], [0.8, 10.5], [10.5, 0.9]])
    draw_face(canvas, pts, np.array([0.3, 0.29, 0.9, 0.9]))
    assert _px(canvas, 5, 5) == (255, 255, 255)
    assert _px(canvas, 14, 14) == (0, 0, 0)
    assert _px(canvas, 0, 10) == (0, 0, 0) and _px(canvas, 10, 0) == (0, 0, 0)
    assert _px(canvas, 2, 10) == (0, 0, 0) and _px(canvas, 10, 2) == (0, 0, 0)


def test_render_pose_draws_faces_only_when_given() -> None:
    kps, scores = _person({NECK: (8.5, 16.5), R_SHOULDER: (24.5, 16.5)})
    face = np.array([[[16.5, 4.5]]])
    face_scores = np.array([[0.9]])
    body_only = render_pose(32, 32, kps[None], scores[None])
    with_face = render_pose(32, 32, kps[None], scores[None], face, face_scores)
    assert body_only.shape == (32, 32, 3) and body_only.dtype == np.uint8
    assert _px(body_only, 16, 4) == (0, 0, 0)
    assert _px(with_face, 16, 4) == (255, 255, 255)
    assert (body_only == 255).all(axis=2).sum() == 0
    empty = render_pose(8, 8, np.zeros((0, 18, 2)), np.zeros((0, 18)))
    assert not empty.any()


def test_coco17_to_openpose18_mapping_and_neck() -> None:
    coco = np.array([[float(i), float(10 * i)] for i in range(17)])
    scores = np.linspace(0.5, 0.9, 17)
    kps, sc = coco17_to_openpose18(coco, scores)
    assert kps.shape == (1, 18, 2) and sc.shape == (1, 18)
    for j, src in enumerate(COCO17_TO_OPENPOSE18):
        if src is not None:
            assert tuple(kps[0, j]) == tuple(coco[src]) and sc[0, j] == scores[src]
    assert tuple(kps[0, 1]) == (5.5, 55.0)  # mean of COCO shoulders 5 and 6
    assert sc[0, 1] == pytest.approx(min(scores[5], scores[6]))
    assert tuple(kps[0, 2]) == tuple(coco[6])  # OpenPose right shoulder = COCO 6
    assert tuple(kps[0, 14]) == tuple(coco[2])  # right eye = COCO 2
    scores[6] = 0.3
    _, sc = coco17_to_openpose18(coco, scores)
    assert sc[0, 1] == 0.0  # neck needs both shoulders


def test_shape_errors() -> None:
    with pytest.raises(ValueError):
        draw_body(np.zeros((8, 8, 3), np.uint8), np.zeros((17, 2)), np.zeros(17))
    with pytest.raises(ValueError):
        draw_face(np.zeros((8, 8, 3), np.uint8), np.zeros((3, 2)), np.zeros(4))
