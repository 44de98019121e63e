from __future__ import annotations

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


def test_palette_and_limbs_are_the_openpose_ones() -> None:
    assert len(COLOURS) == 18 and len(LIMBS) == 17
    assert COLOURS[0] == (255, 0, 0) and COLOURS[12] == (0, 0, 255)  # RGB, not R/B swapped
    assert LIMBS[0] == (1, 2) and LIMBS[12] == (1, 0) and LIMBS[16] == (15, 17)


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
