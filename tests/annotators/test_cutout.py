from __future__ import annotations

import cv2
import numpy as np
from PIL import Image

from vace_server.annotators.cutout import cut_out_subject


def _canvas(h: int, w: int, colour: tuple[int, int, int]) -> np.ndarray:
    return np.full((h, w, 3), colour, np.uint8)


def test_red_disc_on_white_cropped_to_disc() -> None:
    a = _canvas(400, 400, (255, 255, 255))
    cv2.circle(a, (220, 180), 60, (255, 0, 0), thickness=-1, lineType=cv2.LINE_AA)
    out = cut_out_subject(Image.fromarray(a))
    assert out.mode == "RGB"
    w, h = out.size
    assert abs(w - 121) <= 2 and abs(h - 121) <= 2  # disc bbox 160..280 x 120..240
    o = np.asarray(out)
    assert tuple(o[h // 2, w // 2]) == (255, 0, 0)
    assert tuple(o[0, 0]) == (255, 255, 255)  # corner of the bbox is outside the disc


def test_subject_on_plain_blue_background() -> None:
    a = _canvas(360, 480, (20, 60, 200))
    cv2.rectangle(a, (150, 100), (329, 259), (240, 200, 30), thickness=-1)
    cv2.circle(a, (240, 180), 30, (20, 60, 200), thickness=-1)  # blue hole inside the subject
    out = cut_out_subject(Image.fromarray(a))
    o = np.asarray(out)
    assert abs(out.size[0] - 180) <= 2 and abs(out.size[1] - 160) <= 2
    assert tuple(o[5, 5]) == (240, 200, 30)
    # a hole enclosed by the subject counts as subject (documented limit), so it stays blue
    assert tuple(o[80, 90]) == (20, 60, 200)


def test_blue_background_becomes_white() -> None:
    a = _canvas(400, 400, (20, 60, 200))
    cv2.circle(a, (200, 200), 80, (250, 250, 250), thickness=-1)
    o = np.asarray(cut_out_subject(Image.fromarray(a)))
    assert tuple(o[0, 0]) == (255, 255, 255)  # bbox corner, was blue
    assert not np.any(np.all(o == (20, 60, 200), axis=-1))


def test_grabcut_fallback_on_noisy_background() -> None:
    rng = np.random.default_rng(1)
    a = rng.integers(0, 256, (400, 400, 3), dtype=np.uint8)
    a[140:260, 150:250] = (30, 200, 60)  # centre object, 100 x 120
    out = cut_out_subject(Image.fromarray(a))
    o = np.asarray(out)
    w, h = out.size
    assert 95 <= w <= 130 and 115 <= h <= 150
    assert tuple(o[h // 2, w // 2]) == (30, 200, 60)
    green = np.all(o == (30, 200, 60), axis=-1).mean()
    assert green > 0.7
    # deterministic
    assert np.array_equal(o, np.asarray(cut_out_subject(Image.fromarray(a))))


def test_nothing_found_returns_image_unchanged() -> None:
    a = _canvas(400, 400, (128, 128, 128))
    out = cut_out_subject(Image.fromarray(a))
    assert out.size == (400, 400)
    assert np.array_equal(np.asarray(out), a)
