from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from vace_server.media.encode import _yuv_frame, encode_mp4, probe_mp4

# 48 pixels wide: each chroma row (24 bytes) sits in a padded 32-byte row.
_FRAMES = (np.random.default_rng(1).random((5, 32, 48, 3)) * 255).astype(np.uint8)


def _dirty_the_heap(seed: int) -> None:
    """Allocates and frees frames full of noise, so the next frame buffers come from memory
    that held other pixels (as they do deep into a long-running worker)."""
    rng = np.random.default_rng(seed)
    frames = []
    for _ in range(50):
        rgb = av.VideoFrame.from_ndarray(
            (rng.random((32, 48, 3)) * 255).astype(np.uint8), format="rgb24"
        )
        frames += [rgb, rgb.reformat(format="yuv420p")]
    del frames


def test_the_converted_frame_has_no_leftover_bytes_in_its_row_padding() -> None:
    _dirty_the_heap(0)
    frame = _yuv_frame(_FRAMES[0])
    padded = [plane for plane in frame.planes if plane.line_size > plane.width]
    assert padded, "the test needs a size whose rows are padded"
    for plane in padded:
        rows = np.frombuffer(memoryview(plane), np.uint8).reshape(-1, plane.line_size)
        assert not rows[:, plane.width :].any()


def test_the_same_frames_make_the_same_file_whatever_the_heap_held(tmp_path: Path) -> None:
    order = np.array([0, 0, 1, 1, 1, 2, 3, 3, 4, 4])
    _dirty_the_heap(1)
    encode_mp4(_FRAMES[order], 30, tmp_path / "first.mp4")
    first = (tmp_path / "first.mp4").read_bytes()
    for seed in range(2, 8):
        _dirty_the_heap(seed)
        encode_mp4(_FRAMES[order], 30, tmp_path / "again.mp4")
        assert (tmp_path / "again.mp4").read_bytes() == first
        _dirty_the_heap(100 + seed)
        encode_mp4(_FRAMES, 30, tmp_path / "ordered.mp4", order=order)
        assert (tmp_path / "ordered.mp4").read_bytes() == first
    assert probe_mp4(tmp_path / "ordered.mp4").frame_count == 10


def test_an_order_outside_the_frames_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="order must index"):
        encode_mp4(_FRAMES, 30, tmp_path / "bad.mp4", order=np.array([0, 5]))
