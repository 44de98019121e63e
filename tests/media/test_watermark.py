"""media/watermark.py: the bundled font draws "AI生成" without any system font, with real
glyphs (not the .notdef box), and a font that lacks some of them is passed over."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from vace_server.media.watermark import (
    BUNDLED_FONT,
    CJK_FONT_CANDIDATES,
    CJK_TEXT,
    FALLBACK_TEXT,
    choose_font,
    draws_all,
    render_mark,
)

NO_SYSTEM_FONTS = (Path("/nonexistent/wqy-microhei.ttc"), Path("/nonexistent/noto.ttc"))


def _draw(font: ImageFont.FreeTypeFont, text: str) -> np.ndarray:
    image = Image.new("L", (64, 64), 0)
    ImageDraw.Draw(image).text((4, 4), text, font=font, fill=255)
    return np.asarray(image)


def test_the_bundled_font_comes_first_and_is_package_data() -> None:
    assert CJK_FONT_CANDIDATES[0] == BUNDLED_FONT
    assert BUNDLED_FONT.is_file()
    assert (BUNDLED_FONT.parent / "LICENSE-Apache-2.0.txt").is_file()
    assert "Apache License 2.0" in (BUNDLED_FONT.parent / "NOTICE.txt").read_text()


def test_without_system_fonts_the_bundled_font_draws_the_cjk_mark() -> None:
    text, font = choose_font(32, None, candidates=(*NO_SYSTEM_FONTS, BUNDLED_FONT))
    assert text == CJK_TEXT
    assert isinstance(font, ImageFont.FreeTypeFont)
    assert Path(str(font.path)) == BUNDLED_FONT
    assert choose_font(32, None)[0] == CJK_TEXT  # the defaults, whatever this machine has


def test_each_glyph_is_its_own_shape_not_the_notdef_box() -> None:
    font = ImageFont.truetype(str(BUNDLED_FONT), size=32)
    notdef = _draw(font, "\U0010fffd")  # unmapped: the font's .notdef
    shapes = [_draw(font, ch) for ch in CJK_TEXT]
    for ch, shape in zip(CJK_TEXT, shapes, strict=True):
        assert shape.max() == 255, f"{ch} drew nothing"
        assert not np.array_equal(shape, notdef), f"{ch} drew the .notdef box"
    for i, j in [(0, 1), (2, 3), (1, 2)]:  # A, I, 生, 成 are four different shapes
        assert not np.array_equal(shapes[i], shapes[j])
    # a character outside the subset is the box, so the comparison above can fail
    assert np.array_equal(_draw(font, "一"), notdef)
    assert draws_all(font, CJK_TEXT) and not draws_all(font, "一")


def test_the_rendered_mark_has_ink_in_the_glyphs() -> None:
    rgb, alpha = render_mark(720, None, candidates=(BUNDLED_FONT,))
    assert alpha.shape[0] >= 25 and alpha.shape[1] > alpha.shape[0] * 2  # four glyphs wide
    assert (alpha > 0.5).mean() > 0.1
    # white fill inside the glyphs, dark outline around them
    assert (rgb[alpha > 0.7] > 200).all(axis=-1).any()
    assert (rgb[alpha > 0.7] < 60).all(axis=-1).any()


def test_a_font_without_the_latin_glyphs_is_passed_over(tmp_path: Path) -> None:
    """Like Droid Sans Fallback (CJK only): its "AI" would be boxes, so the next one is used."""
    subset = pytest.importorskip("fontTools.subset")
    cjk_only = tmp_path / "cjk-only.ttf"
    options = subset.Options()
    options.notdef_outline = True
    font = subset.load_font(str(BUNDLED_FONT), options)
    subsetter = subset.Subsetter(options)
    subsetter.populate(text="生成")
    subsetter.subset(font)
    buffer = io.BytesIO()
    subset.save_font(font, buffer, options)
    cjk_only.write_bytes(buffer.getvalue())

    text, chosen = choose_font(32, cjk_only, candidates=(BUNDLED_FONT,))
    assert text == CJK_TEXT and Path(str(getattr(chosen, "path", ""))) == BUNDLED_FONT
    assert choose_font(32, cjk_only, candidates=())[0] == FALLBACK_TEXT
