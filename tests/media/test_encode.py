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


def test_encode_and_probe(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    frames = (rng.random((12, 48, 64, 3)) * 255).astype(np.uint8)
    frames[:, :, :32] = (200, 40, 40)
    path = tmp_path / "out.mp4"
    encode_mp4(frames, 30, path)
    assert [p.name for p in tmp_path.iterdir()] == ["out.mp4"]  # temp file moved into place

    info = probe_mp4(path)
    assert info.frame_count == 12
    assert (info.width, info.height) == (64, 48)
    assert info.width % 2 == 0 and info.height % 2 == 0
    assert info.fps == pytest.approx(30)
    assert info.codec_name == "h264"
    assert info.has_audio is False

    data = path.read_bytes()
    assert data.find(b"moov") < data.find(b"mdat")  # faststart

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.pix_fmt == "yuv420p"
        decoded = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
    assert len(decoded) == 12
    assert np.abs(decoded[0][8:40, 4:24].astype(int) - (200, 40, 40)).max() < 12


def test_encode_rejects_odd_size(tmp_path: Path) -> None:
    with pytest.raises(AssertionError):
        encode_mp4(np.zeros((2, 15, 16, 3), np.uint8), 30, tmp_path / "odd.mp4")
    assert list(tmp_path.iterdir()) == []


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
