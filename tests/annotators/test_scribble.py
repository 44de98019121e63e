from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from vace_server.annotators.scribble import ClassicalScribble, canny_scribble, xdog_scribble


def _square(size: tuple[int, int] = (80, 60)) -> Image.Image:
    """White square (x 20..49, y 15..44) on black."""
    a = np.zeros((size[1], size[0], 3), np.uint8)
    a[15:45, 20:50] = 255
    return Image.fromarray(a)


def test_canny_dark_lines_on_white_along_the_edges() -> None:
    out = np.asarray(canny_scribble(_square()))
    assert out.shape == (60, 80, 3)
    assert set(np.unique(out)) <= {0, 255}
    dark = out[..., 0] == 0
    assert dark[15:45, 18:23].any() and dark[15:45, 47:52].any()  # left / right edges
    assert dark[13:18, 20:50].any() and dark[42:47, 20:50].any()  # top / bottom edges
    assert not dark[25:35, 30:40].any()  # inside the square: white
    assert not dark[:8].any() and not dark[:, :10].any()  # background: white
    assert dark.mean() < 0.15


def test_flat_frame_is_blank_for_both_styles() -> None:
    flat = Image.new("RGB", (32, 24), (90, 120, 30))
    assert np.all(np.asarray(canny_scribble(flat)) == 255)
    assert np.asarray(xdog_scribble(flat)).min() >= 250


def test_xdog_soft_dark_strokes_at_the_edges() -> None:
    out = np.asarray(xdog_scribble(_square()))
    assert out.shape == (60, 80, 3)
    gray = out[..., 0].astype(int)
    assert gray[25:35, 30:40].min() >= 250  # flat inside: white
    assert gray[:8, :].min() >= 250  # flat background: white
    assert gray[15:45, 18:23].min() < 60  # the left edge gets a dark stroke


@pytest.mark.parametrize("style", ["canny", "xdog"])
def test_annotator_keeps_count_size_order_and_is_deterministic(style: str) -> None:
    scribble = ClassicalScribble(style)
    assert scribble.name == f"{style}-scribble"
    assert scribble.backend == "classical"
    frames = [_square(), Image.new("RGB", (80, 60), (10, 10, 10)), _square().convert("L")]
    first = scribble.annotate(frames)
    second = scribble.annotate(frames)
    assert len(first) == 3
    assert all(out.size == (80, 60) and out.mode == "RGB" for out in first)
    assert np.asarray(first[1]).min() >= 250  # the flat frame stays blank, in order
    assert all(
        np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(first, second, strict=True)
    )


def test_unknown_style_is_refused() -> None:
    with pytest.raises(ValueError, match="canny"):
        ClassicalScribble("hed")
