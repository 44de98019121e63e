"""Weight-free scribble control renderings (docs/model-inputs.md §5.3).

VACE's `scribble` control comes from a small generator network (`ContourInference`, weights
`scribble/anime_style/netG_A_latest.pth`) that draws soft, artist-like contour lines, probably
dark on white. We have no such weights, so two classical line drawings stand in for it:

- `canny`: Canny edges of the lightly blurred gray frame, dilated, inverted → binary black
  lines (0) on white (255). Crisp, one- to two-pixel strokes; texture (grass, hair, noise,
  compression blocks) turns into clutter, and faint outlines vanish.
- `xdog`: eXtended Difference of Gaussians → soft gray strokes on white, closer to a pencil
  sketch; it also fills dark regions with tone, which the network does not.

Both are a **different style** from what VACE's scribble branch was trained on, so the
control is weaker and less faithful than with the real annotator. They are deterministic and
fast (about a millisecond per 832×480 frame for Canny), and keep each frame's size.

Channel order: VACE's network takes the RGB frame as is (/255, no swap); both stand-ins take the
luma of the RGB frame (OpenCV RGB2GRAY), so nothing is swapped here either.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
from PIL import Image


def _gray(frame: Image.Image) -> np.ndarray:
    return cv2.cvtColor(np.asarray(frame.convert("RGB")), cv2.COLOR_RGB2GRAY)


def canny_scribble(
    frame: Image.Image,
    low: int = 100,
    high: int = 200,
    line_width: int = 2,
    blur_sigma: float = 0.8,
) -> Image.Image:
    """Canny edges as dark lines on white.

    Args: `low`/`high` are Canny's hysteresis thresholds on the 0..255 gray image,
    `line_width` the square dilation kernel side (1 = no dilation), `blur_sigma` a Gaussian
    pre-blur (0 = none) that suppresses noise edges.
    Returns: an RGB image of the frame's size whose pixels are exactly 0 (line) or 255."""
    gray = _gray(frame)
    if blur_sigma > 0:
        gray = cv2.GaussianBlur(gray, (0, 0), blur_sigma)
    edges = cv2.Canny(gray, low, high)
    if line_width > 1:
        edges = cv2.dilate(edges, np.ones((line_width, line_width), np.uint8))
    return Image.fromarray(np.ascontiguousarray(255 - edges)).convert("RGB")


def xdog_scribble(
    frame: Image.Image,
    sigma: float = 0.8,
    k: float = 1.6,
    tau: float = 0.98,
    eps: float = 0.0,
    phi: float = 100.0,
) -> Image.Image:
    """XDoG line drawing: soft dark strokes on white.

    D = G_sigma(g) − tau·G_(k·sigma)(g) on the gray image g ∈ [0, 1]; pixels with D ≥ eps are
    white, the rest fall off as 1 + tanh(phi·(D − eps)).
    Returns: an RGB image of the frame's size, gray levels 0..255."""
    gray = _gray(frame).astype(np.float32) / 255.0
    d = cv2.GaussianBlur(gray, (0, 0), sigma) - tau * cv2.GaussianBlur(gray, (0, 0), sigma * k)
    out = np.where(d >= eps, 1.0, 1.0 + np.tanh(phi * (d - eps)))
    rendered = np.round(np.clip(out, 0.0, 1.0) * 255.0).astype(np.uint8)
    return Image.fromarray(rendered).convert("RGB")


class ClassicalScribble:
    """FrameAnnotator for the `scribble` control without weights (see the module docstring
    for how its style differs from VACE's scribble network)."""

    backend = "classical"

    def __init__(self, style: str = "canny") -> None:
        if style not in ("canny", "xdog"):
            raise ValueError(f"scribble style must be 'canny' or 'xdog', not {style!r}")
        self.style = style
        self.name = f"{style}-scribble"

    def annotate(self, frames: Sequence[Image.Image]) -> list[Image.Image]:
        """One RGB rendering per frame, same size and order."""
        render = canny_scribble if self.style == "canny" else xdog_scribble
        return [render(frame) for frame in frames]
