"""The "AI生成" mark at the bottom right of delivered videos (docs/contract.md §12).

The package ships the four glyphs it needs (`fonts/wqy-microhei-mark.ttf`, a subset of
WenQuanYi Micro Hei under the Apache License 2.0, see `fonts/NOTICE.txt`), so the mark is the
same on every machine and needs no system font; system CJK fonts are only tried after it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

logger = logging.getLogger(__name__)

CJK_TEXT = "AI生成"
FALLBACK_TEXT = "AI-generated"

BUNDLED_FONT = Path(__file__).resolve().parent / "fonts" / "wqy-microhei-mark.ttf"
# A code point no font maps (the last private-use one): it draws the font's .notdef glyph.
_UNMAPPED = "\U0010fffd"

CJK_FONT_CANDIDATES: tuple[Path, ...] = (
    BUNDLED_FONT,
    Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"),
    Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc"),
    Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"),
    Path("/usr/share/fonts/opentype/noto/NotoSansCJKsc-Regular.otf"),
    Path("/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc"),
    Path("/usr/share/fonts/google-noto-cjk/NotoSansCJK-Regular.ttc"),
    Path("/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf"),
    Path("/usr/share/fonts/truetype/arphic/uming.ttc"),
)

_FILL_OPACITY = 0.75
_FILL = (255, 255, 255)
_OUTLINE = (20, 20, 20)

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont | ImageFont.TransposedFont


def choose_font(
    size: int,
    font_path: Path | None,
    candidates: Sequence[Path] = CJK_FONT_CANDIDATES,
) -> tuple[str, Font]:
    """Picks the mark's text and font: "AI生成" with `font_path` or the first existing
    candidate (the bundled font first) that has all four glyphs; otherwise "AI-generated" with
    Pillow's scalable default font.

    Returns: (text, font). Raises: nothing (unloadable fonts are logged and skipped)."""
    paths = ([font_path] if font_path is not None else []) + list(candidates)
    for path in paths:
        if not path.is_file():
            if path == font_path:
                logger.warning("watermark font %s not found; trying defaults", path)
            continue
        try:
            font = ImageFont.truetype(str(path), size=size)
        except OSError as exc:
            logger.warning("watermark font %s unusable: %s", path, exc)
            continue
        if draws_all(font, CJK_TEXT):
            return CJK_TEXT, font
        # e.g. Droid Sans Fallback: CJK only, its "AI" would be .notdef boxes
        logger.warning("watermark font %s lacks glyphs of %s; trying the next", path, CJK_TEXT)
    return FALLBACK_TEXT, ImageFont.load_default(size=size)


def draws_all(font: ImageFont.FreeTypeFont, text: str) -> bool:
    """Whether every character of `text` has a glyph of its own in `font`: its bitmap is not
    the font's .notdef (the box a font draws for a character it does not map)."""
    notdef = _bitmap(font, _UNMAPPED)
    return all(_bitmap(font, ch) != notdef for ch in text)


def _bitmap(font: ImageFont.FreeTypeFont, ch: str) -> tuple[tuple[int, int], bytes]:
    mask = font.getmask(ch)
    return mask.size, bytes(mask)


def render_mark(
    frame_height: int, font_path: Path | None, candidates: Sequence[Path] = CJK_FONT_CANDIDATES
) -> tuple[np.ndarray, np.ndarray]:
    """Draws the mark once, sized from the frame height.

    Returns: (rgb, alpha): uint8 (h, w, 3) colours and float32 (h, w) opacity in [0, 1]."""
    size = max(10, round(frame_height * 0.045))
    stroke = max(1, round(size / 14))
    text, font = choose_font(size, font_path, candidates)
    probe = ImageDraw.Draw(Image.new("L", (1, 1)))
    left, top, right, bottom = probe.textbbox((0, 0), text, font=font, stroke_width=stroke)
    w, h = int(right - left) + 2, int(bottom - top) + 2
    origin = (1 - left, 1 - top)

    fill_layer = Image.new("L", (w, h), 0)
    ImageDraw.Draw(fill_layer).text(origin, text, font=font, fill=255)
    shape_layer = Image.new("L", (w, h), 0)
    ImageDraw.Draw(shape_layer).text(
        origin, text, font=font, fill=255, stroke_width=stroke, stroke_fill=255
    )
    fill = np.asarray(fill_layer, dtype=np.float32) / 255.0
    shape = np.asarray(shape_layer, dtype=np.float32) / 255.0
    # outline where the stroked shape is but the glyph fill is not; colour blends between them
    rgb = (
        fill[..., None] * np.array(_FILL, np.float32)
        + (1.0 - fill[..., None]) * np.array(_OUTLINE, np.float32)
    ).astype(np.uint8)
    alpha = (shape * _FILL_OPACITY).astype(np.float32)
    return rgb, alpha


def apply_watermark(
    frames: np.ndarray,
    font_path: Path | None,
    candidates: Sequence[Path] = CJK_FONT_CANDIDATES,
) -> np.ndarray:
    """Blends the mark into the bottom-right corner of every frame (in place and returned).

    `frames`: uint8 (N, H, W, 3). A frame too small for the mark is left unchanged.
    Returns: `frames`."""
    _n, height, width, _c = frames.shape
    rgb, alpha = render_mark(height, font_path, candidates)
    mh, mw = alpha.shape
    margin = max(2, round(height * 0.025))
    if mh + margin > height or mw + margin > width:
        logger.warning("frame %dx%d too small for the watermark", width, height)
        return frames
    y1, x1 = height - margin, width - margin
    y0, x0 = y1 - mh, x1 - mw
    region = frames[:, y0:y1, x0:x1, :].astype(np.float32)
    a = alpha[None, :, :, None]
    blended = region * (1.0 - a) + rgb[None].astype(np.float32) * a
    frames[:, y0:y1, x0:x1, :] = np.clip(np.rint(blended), 0, 255).astype(np.uint8)
    return frames
