from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from vace_server.media.output import render_video, retime_indices
from vace_server.media.watermark import CJK_TEXT, FALLBACK_TEXT, choose_font


def _ramp(t: int = 17, h: int = 16, w: int = 24) -> np.ndarray:
    """Frame i is a flat grey of level i / (t - 1): identifiable after retiming."""
    levels = np.linspace(0.0, 1.0, t, dtype=np.float32)
    return np.broadcast_to(levels[:, None, None, None], (t, h, w, 3)).copy()


def render_output(frames: np.ndarray, **kw: Any) -> np.ndarray:
    """Every delivered position as its own frame, repeats included."""
    return render_video(frames, **kw).expanded()


def test_retime_indices_keep_ends() -> None:
    idx = retime_indices(17, 32)
    assert len(idx) == 32 and idx[0] == 0 and idx[-1] == 16
    assert np.all(np.diff(idx) >= 0)
    assert list(retime_indices(5, 1)) == [0]
    assert list(retime_indices(1, 3)) == [0, 0, 0]
    assert list(retime_indices(9, 3)) == [0, 4, 8]


def test_render_count_and_ends() -> None:
    frames = _ramp()
    out = render_output(
        frames, size=(24, 16), seconds=17 / 16, fps=30, watermark=False, font_path=None
    )
    assert out.dtype == np.uint8
    assert out.shape == (32, 16, 24, 3)  # round(17/16 * 30) = 32
    assert out[0].max() == 0 and out[-1].min() == 255
    means = out.reshape(32, -1).mean(axis=1)
    assert np.all(np.diff(means) >= 0)


def test_render_exact_size_and_min_one_frame() -> None:
    frames = _ramp(t=5, h=16, w=16)
    out = render_output(
        frames, size=(42, 30), seconds=0.01, fps=30, watermark=False, font_path=None
    )
    assert out.shape == (1, 30, 42, 3)
    big = render_output(frames, size=(8, 6), seconds=1.0, fps=4, watermark=False, font_path=None)
    assert big.shape == (4, 6, 8, 3)


def test_render_clips_overshoot() -> None:
    frames = np.zeros((2, 8, 8, 3), np.float32)
    frames[:, :, 4:] = 1.0  # a hard edge overshoots under bicubic upscaling
    out = render_output(frames, size=(64, 64), seconds=1.0, fps=2, watermark=False, font_path=None)
    assert out[:, :, :20].max() <= 5 and out[:, :, -20:].min() >= 250


def test_watermark_only_bottom_right() -> None:
    frames = np.full((3, 90, 160, 3), 0.5, np.float32)
    kw = {"size": (320, 180), "seconds": 0.1, "fps": 30, "font_path": None}
    plain = render_output(frames, watermark=False, **kw)  # type: ignore[arg-type]
    marked = render_output(frames, watermark=True, **kw)  # type: ignore[arg-type]
    diff = np.any(plain != marked, axis=(0, 3))
    assert diff.any()
    ys, xs = np.nonzero(diff)
    assert ys.min() > 180 * 0.75 and xs.min() > 320 * 0.5
    assert ys.max() < 180 and xs.max() < 320
    assert np.array_equal(plain[:, :120], marked[:, :120])


def test_font_fallback_without_cjk(tmp_path: Path) -> None:
    text, _font = choose_font(20, tmp_path / "missing.ttc", candidates=())
    assert text == FALLBACK_TEXT
    assert CJK_TEXT == "AI生成"


def test_render_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        render_output(
            np.zeros((4, 4, 3), np.float32),
            size=(4, 4),
            seconds=1,
            fps=1,
            watermark=False,
            font_path=None,
        )


def test_render_video_holds_each_repeated_frame_once() -> None:
    frames = _ramp()
    kw = {"size": (24, 16), "seconds": 2.0, "fps": 30, "watermark": True, "font_path": None}
    video = render_video(frames, **kw)  # type: ignore[arg-type]
    assert len(video) == 60 and len(video.frames) == 17  # 17 distinct frames, 60 positions
    assert np.all(np.diff(video.order) >= 0) and (video.width, video.height) == (24, 16)
    # Rendering every repeated frame on its own (60 inputs to 60 positions: no repeats to
    # share) gives the same pixels as rendering each distinct frame once.
    one_by_one = render_video(frames[retime_indices(17, 60)], **kw)  # type: ignore[arg-type]
    assert len(one_by_one.frames) == 60
    np.testing.assert_array_equal(video.expanded(), one_by_one.expanded())
