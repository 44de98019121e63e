"""Weight-free subject cut-out for `obj` reference images (docs/model-inputs.md §5.5).

VACE wants an `obj` reference as the subject on white, cropped to its bounding box. Without a
segmentation model we use two classical steps:

1. Border-colour mask: pixels far from the median colour of the image border, cleaned with
   morphology, largest connected component kept, holes filled.
2. If that finds nothing useful (empty/tiny, or > ~90 % of the image), GrabCut initialised
   with a centred rectangle (run on a downscaled copy, mask scaled back).

Channel order: VACE's salient model (U2-Net) gets RGB; here the border-colour step works on RGB
and GrabCut on BGR, OpenCV's convention (its colour models do not depend on channel order).
"""

from __future__ import annotations

import cv2
import numpy as np
from PIL import Image

BORDER_TOLERANCE = 40  # max per-channel distance from the border colour still "background"
MIN_FRACTION = 0.002  # a mask smaller than this share of the image is "nothing"
MAX_FRACTION = 0.90  # a mask larger than this is "everything", i.e. no plain background
GRABCUT_MAX_SIDE = 320
GRABCUT_ITERATIONS = 5
GRABCUT_MARGIN = 0.08  # rectangle inset from each edge, as a share of the side


def _kernel(shape: tuple[int, int], divisor: int) -> np.ndarray:
    side = max(3, (min(shape) // divisor) | 1)
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (side, side))


def _largest_component_filled(mask: np.ndarray) -> np.ndarray:
    """uint8 0/1 mask → its largest 8-connected component with interior holes filled."""
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if n <= 1:
        return np.zeros_like(mask)
    best = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    blob = (labels == best).astype(np.uint8)
    # holes = background pixels not reachable from the image border
    padded = np.pad(blob, 1)
    flood = padded.copy()
    ff_mask = np.zeros((flood.shape[0] + 2, flood.shape[1] + 2), np.uint8)
    cv2.floodFill(flood, ff_mask, (0, 0), 1)
    holes = (flood[1:-1, 1:-1] == 0).astype(np.uint8)
    return blob | holes


def _useful(mask: np.ndarray) -> bool:
    fraction = float(mask.mean()) if mask.size else 0.0
    return MIN_FRACTION <= fraction <= MAX_FRACTION


def border_colour_mask(rgb: np.ndarray, tolerance: int = BORDER_TOLERANCE) -> np.ndarray:
    """Foreground = far from the median border colour (2-px ring), opened, closed, largest blob.

    Returns: uint8 (H, W) mask of 0/1."""
    a = rgb.astype(np.int16)
    ring = max(1, min(2, min(a.shape[:2]) // 4))
    border = np.concatenate(
        [
            a[:ring].reshape(-1, 3),
            a[-ring:].reshape(-1, 3),
            a[:, :ring].reshape(-1, 3),
            a[:, -ring:].reshape(-1, 3),
        ]
    )
    background = np.median(border, axis=0)
    fg = (np.abs(a - background).max(axis=2) > tolerance).astype(np.uint8)
    fg = cv2.morphologyEx(fg, cv2.MORPH_OPEN, _kernel(fg.shape, 200))
    fg = cv2.morphologyEx(fg, cv2.MORPH_CLOSE, _kernel(fg.shape, 100))
    return _largest_component_filled(fg)


def grabcut_mask(rgb: np.ndarray) -> np.ndarray:
    """GrabCut from a centred rectangle on a copy at most GRABCUT_MAX_SIDE px, seeded RNG.

    Returns: uint8 (H, W) mask of 0/1 at the input size (largest blob, holes filled)."""
    h, w = rgb.shape[:2]
    scale = min(1.0, GRABCUT_MAX_SIDE / max(h, w))
    small = rgb
    if scale < 1.0:
        size = (max(8, round(w * scale)), max(8, round(h * scale)))
        small = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    sh, sw = small.shape[:2]
    mx, my = max(1, round(sw * GRABCUT_MARGIN)), max(1, round(sh * GRABCUT_MARGIN))
    rect = (mx, my, sw - 2 * mx, sh - 2 * my)
    if rect[2] < 2 or rect[3] < 2:
        return np.zeros((h, w), np.uint8)
    mask = np.zeros((sh, sw), np.uint8)
    bgd = np.zeros((1, 65), np.float64)
    fgd = np.zeros((1, 65), np.float64)
    cv2.setRNGSeed(0)  # GrabCut's k-means init draws from OpenCV's per-thread RNG
    bgr = np.ascontiguousarray(small[:, :, ::-1])
    cv2.grabCut(bgr, mask, rect, bgd, fgd, GRABCUT_ITERATIONS, cv2.GC_INIT_WITH_RECT)
    fg = ((mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD)).astype(np.uint8)
    if (sh, sw) != (h, w):
        fg = cv2.resize(fg, (w, h), interpolation=cv2.INTER_NEAREST)
    fg = cv2.morphologyEx(fg, cv2.MORPH_OPEN, _kernel(fg.shape, 150))
    return _largest_component_filled(fg)


def cut_out_subject(image: Image.Image) -> Image.Image:
    """Cuts the main subject out onto white and crops to its bounding box (for `obj` refs).

    Deterministic (fixed thresholds; GrabCut's RNG is seeded). Quality limits: meant for
    product-style shots on a plain, roughly uniform background that differs clearly from the
    subject. Handled poorly: subjects touching the border, several separate subjects (only the
    largest blob is kept), subjects coloured like the background, soft shadows, hair/fur and
    transparent parts. Background enclosed by the subject (inside a ring, between an arm and
    the body) is kept, because holes are filled. Cluttered backgrounds rely on the GrabCut
    fallback, which assumes the subject sits inside the centred rectangle. No anti-aliased
    matte: edges are hard.

    Returns: a new RGB image, subject on white (255) cropped to the mask's bounding box; the
    RGB image unchanged when neither method finds a useful mask.
    Raises: nothing for valid images."""
    rgb_image = image.convert("RGB")
    rgb = np.asarray(rgb_image)
    if rgb.shape[0] < 8 or rgb.shape[1] < 8:
        return rgb_image.copy()
    mask = border_colour_mask(rgb)
    if not _useful(mask):
        mask = grabcut_mask(rgb)
        if not _useful(mask):
            return rgb_image.copy()
    ys, xs = np.nonzero(mask)
    y0, y1, x0, x1 = int(ys.min()), int(ys.max()) + 1, int(xs.min()), int(xs.max()) + 1
    out = rgb.copy()
    out[mask == 0] = 255
    return Image.fromarray(np.ascontiguousarray(out[y0:y1, x0:x1]))
