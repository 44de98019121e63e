"""Mask expansion for `video_edit` (`expand_mode`, `expand_ratio`), deterministic.

VACE's `maskaug` draws the growth per side (`expand_lrtp`, each in [0, 1)) and the number of
dilation steps (1..10) at random on every call; DashScope promises a fixed behaviour, so here
every side uses lrtp = 1 and one growth step (docs/model-inputs.md §6). Everything else follows
VACE's arithmetic. For a mask whose nonzero pixels span columns `left..right` (inclusive) in a
`W`-wide frame, with `bw = right - left + 1`:

    grow_left  = int(min(ratio * bw, left / 2))
    grow_right = int(min(ratio * bw, (W - right) / 2))

and the same vertically, so a mask never grows past about half its distance to an edge. VACE
dilates with a 2k x 2k kernel (k = the largest of the four) centred at (k, k), which cannot
reach k pixels to the left or up: a side whose growth equals k grows k - 1 there (left and top
only). That is kept, so masks grow exactly as VACE's would with lrtp = 1, one step.

A pixel > 0 is part of the mask (VACE's `nonzero()`); the hull is filled with PIL's polygon
fill, as VACE draws it.
"""

from __future__ import annotations

import cv2
import numpy as np
from PIL import Image, ImageDraw

__all__ = ["EXPAND_MODES", "expand_mask"]

EXPAND_MODES = ("hull", "bbox", "original")


def expand_mask(mask: Image.Image, mode: str = "hull", ratio: float = 0.05) -> Image.Image:
    """One mask (any mode; > 0 = edit) -> its `mode` shape grown by `ratio`.

    `mode`: `hull` (filled convex hull of all regions together), `bbox` (filled bounding box)
    or `original` (shape unchanged). `ratio` in [0, 1] of the shape's box width / height.

    Returns: an "L" image of the same size, exactly 0 / 255. An empty mask stays empty.
    Raises: ValueError for an unknown mode or a ratio outside [0, 1].
    """
    # 1. Check the parameters (the API validated them; a bad value here is a bug).
    if mode not in EXPAND_MODES:
        raise ValueError(f"unknown expand_mode {mode!r}; expected one of {EXPAND_MODES}")
    if not 0.0 <= ratio <= 1.0:
        raise ValueError(f"expand_ratio {ratio} is outside [0, 1]")

    # 2. Every nonzero pixel is the mask, as in VACE's maskaug.
    m = (np.asarray(mask.convert("L")) > 0).astype(np.uint8)
    if not m.any():
        return Image.fromarray(m * 255, mode="L")

    # 3. Shape.
    if mode == "hull":
        m = _filled_hull(m)
    elif mode == "bbox":
        x, y, bw, bh = cv2.boundingRect(m)
        m = np.zeros_like(m)
        m[y : y + bh, x : x + bw] = 1

    # 4. Growth: one dilation with a box kernel whose anchor makes it asymmetric, so each side
    #    grows by its own amount.
    if ratio > 0:
        m = _grow(m, ratio)
    return Image.fromarray(m * 255, mode="L")


def _filled_hull(m: np.ndarray) -> np.ndarray:
    """Filled convex hull of every region of the binary mask taken together."""
    contours, _ = cv2.findContours(m, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    hull = cv2.convexHull(np.concatenate(contours))[:, 0, :]
    if len(hull) < 2:  # a single pixel is its own hull (PIL needs two points)
        return m
    canvas = Image.new("L", (m.shape[1], m.shape[0]), 0)
    ImageDraw.Draw(canvas).polygon([(float(x), float(y)) for x, y in hull], fill=1)
    # The hull contains every original pixel (PIL fills its own vertices; this only guards it).
    return np.maximum(np.asarray(canvas, dtype=np.uint8), m)


def _grow(m: np.ndarray, ratio: float) -> np.ndarray:
    """Dilates the binary mask by ratio * box size per side, capped at half the margin."""
    height, width = m.shape
    x, y, bw, bh = cv2.boundingRect(m)
    right, bottom = x + bw - 1, y + bh - 1  # inclusive, as VACE's bbox
    grow_left = int(min(ratio * bw, x / 2))
    grow_right = int(min(ratio * bw, (width - right) / 2))
    grow_top = int(min(ratio * bh, y / 2))
    grow_bottom = int(min(ratio * bh, (height - bottom) / 2))
    k = max(grow_left, grow_right, grow_top, grow_bottom)
    if k == 0:
        return m
    # VACE's centred 2k x 2k kernel reaches at most k - 1 pixels left and up.
    grow_left, grow_top = min(grow_left, k - 1), min(grow_top, k - 1)
    kernel = np.ones((grow_top + grow_bottom + 1, grow_left + grow_right + 1), np.uint8)
    # dst(x, y) = max src(x + i - ax, y + j - ay): offsets -grow_right..+grow_left reach a pixel
    # `grow_left` left of the box's left edge and `grow_right` right of its right edge.
    grown = cv2.dilate(m, kernel, anchor=(grow_right, grow_bottom))
    return np.asarray(grown, dtype=np.uint8)
