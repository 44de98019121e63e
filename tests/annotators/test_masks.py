from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from vace_server.annotators.masks import expand_mask

W, H = 200, 150


def mask_of(a: np.ndarray) -> Image.Image:
    return Image.fromarray(a.astype(np.uint8), mode="L")


def box(x0: int, y0: int, x1: int, y1: int, size: tuple[int, int] = (W, H)) -> np.ndarray:
    a = np.zeros((size[1], size[0]), np.uint8)
    a[y0:y1, x0:x1] = 255
    return a


def extent(m: Image.Image) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) inclusive of the white pixels."""
    ys, xs = np.nonzero(np.asarray(m))
    return int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())


@pytest.mark.parametrize("mode", ["hull", "bbox", "original"])
def test_documented_60x40_example(mode: str) -> None:
    # Box x 50..109, y 50..89 (60x40) in 200x150, ratio 0.5:
    # left  min(30, 50/2)=25, right min(30, 90/2)=30, top min(20, 50/2)=20, bottom min(20, 60/2)=20
    out = expand_mask(mask_of(box(50, 50, 110, 90)), mode, 0.5)
    assert out.mode == "L" and out.size == (W, H)
    assert extent(out) == (50 - 25, 50 - 20, 109 + 30, 89 + 20)
    a = np.asarray(out)
    assert set(np.unique(a)) == {0, 255}
    assert (a[30:110, 25:140] == 255).all() and a.sum() == 255 * 80 * 115  # a filled rectangle


def test_deterministic_across_calls() -> None:
    rng = np.random.default_rng(1)
    a = np.zeros((H, W), np.uint8)
    a[40:100, 60:140] = rng.integers(0, 2, (60, 80)) * 255
    first = [np.asarray(expand_mask(mask_of(a), m, 0.3)) for m in ("hull", "bbox", "original")]
    for _ in range(3):
        again = [np.asarray(expand_mask(mask_of(a), m, 0.3)) for m in ("hull", "bbox", "original")]
        assert all(np.array_equal(x, y) for x, y in zip(first, again, strict=True))


def test_ratio_zero_shapes() -> None:
    # An L shape: original keeps it, bbox fills its box, hull fills the triangle-ish corner.
    a = np.zeros((H, W), np.uint8)
    a[20:80, 20:30] = 255  # vertical bar
    a[70:80, 20:100] = 255  # horizontal bar
    original = np.asarray(expand_mask(mask_of(a), "original", 0.0))
    bbox = np.asarray(expand_mask(mask_of(a), "bbox", 0.0))
    hull = np.asarray(expand_mask(mask_of(a), "hull", 0.0))
    assert np.array_equal(original, a)
    assert np.array_equal(bbox, box(20, 20, 100, 80))
    assert (hull >= a).all()  # contains the shape
    assert hull[75, 60] == 255 and hull[50, 50] == 255  # inside the hull
    assert hull[25, 90] == 0  # above the diagonal: outside the hull
    assert original.sum() < hull.sum() < bbox.sum()


def test_hull_joins_separate_regions() -> None:
    a = box(20, 20, 40, 40) | box(120, 90, 140, 110)
    hull = np.asarray(expand_mask(mask_of(a), "hull", 0.0))
    assert hull[65, 80] == 255  # between the two blobs
    assert hull[100, 30] == 0 and hull[30, 130] == 0  # off the joining band


def test_original_mode_grows_the_shape_itself() -> None:
    # A plus sign grows by its own per-side amounts but its concave corners are not filled.
    a = box(90, 40, 110, 110) | box(60, 65, 140, 85)
    out = np.asarray(expand_mask(mask_of(a), "original", 0.1))
    # box 80x70 at (60, 40): right +8, top/bottom +7, left 8 = k -> +7 (VACE's kernel)
    assert extent(mask_of(out)) == (53, 33, 147, 116)
    assert out[45, 65] == 0  # the concave corner stays empty
    assert out[65 - 7, 62] == 255 and out[65 - 8, 62] == 0  # horizontal arm grew 7 upwards


def test_growth_capped_by_the_frame_edges() -> None:
    out = expand_mask(mask_of(box(0, 0, 60, 40)), "bbox", 1.0)  # touching the top-left corner
    # left/top margins are 0 -> no growth; right min(60, 140/2)=60, bottom min(40, 110/2)=40
    assert extent(out) == (0, 0, 119, 79)
    full = expand_mask(mask_of(box(0, 0, W, H)), "hull", 1.0)
    assert (np.asarray(full) == 255).all()


def test_every_nonzero_pixel_counts_and_empty_stays_empty() -> None:
    # VACE's maskaug takes the mask's nonzero() pixels: a faint (soft / JPEG) edge is mask too.
    a = box(50, 50, 110, 90)
    a[a == 255] = 1
    assert extent(expand_mask(mask_of(a), "bbox", 0.0)) == (50, 50, 109, 89)
    assert not np.asarray(expand_mask(mask_of(np.zeros((H, W))), "hull", 0.5)).any()
    rgb = Image.fromarray(np.stack([box(50, 50, 110, 90)] * 3, axis=2))
    assert extent(expand_mask(rgb, "bbox", 0.0)) == (50, 50, 109, 89)


def test_left_and_top_growth_stop_one_short_like_vaces_kernel() -> None:
    # 20x20 box at (90, 65): every side would grow min(10, margin / 2) = 10 = k; VACE's 2k x 2k
    # kernel centred at (k, k) reaches only k - 1 = 9 pixels to the left and upwards.
    out = expand_mask(mask_of(box(90, 65, 110, 85)), "bbox", 0.5)
    assert extent(out) == (90 - 9, 65 - 9, 109 + 10, 84 + 10)
    # right margin uses VACE's inclusive right edge: (W - right) / 2 = (200 - 189) / 2 -> 5
    out = expand_mask(mask_of(box(150, 65, 190, 85)), "bbox", 0.5)
    assert extent(out)[2] == 189 + 5


def test_rejects_bad_parameters() -> None:
    m = mask_of(box(10, 10, 20, 20))
    with pytest.raises(ValueError, match="expand_mode"):
        expand_mask(m, "random", 0.1)
    with pytest.raises(ValueError, match="expand_ratio"):
        expand_mask(m, "hull", 1.5)


@pytest.mark.parametrize("mode", ["hull", "bbox", "original"])
def test_single_pixel_and_two_pixel_masks(mode: str) -> None:
    a = np.zeros((H, W), np.uint8)
    a[70, 100] = 255
    assert np.array_equal(np.asarray(expand_mask(mask_of(a), mode, 0.0)), a)
    # each side would grow int(1 * 1) = 1 = k: right and bottom do, left and top reach k - 1 = 0
    assert extent(expand_mask(mask_of(a), mode, 1.0)) == (100, 70, 101, 71)
    a[70, 110] = 255
    out = np.asarray(expand_mask(mask_of(a), mode, 0.0))
    assert out[70, 100] == out[70, 110] == 255
