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


def _smooth_frames(count: int = 5, h: int = 32, w: int = 48) -> np.ndarray:
    """Gradients with a bright square moving right: content H.264 keeps close to the source
    (unlike noise), so decoded frames can be told apart and matched to their source frame."""
    frames = np.zeros((count, h, w, 3), np.uint8)
    frames[..., 0] = np.linspace(0, 200, w, dtype=np.uint8)[None, None, :]
    frames[..., 1] = np.linspace(0, 200, h, dtype=np.uint8)[None, :, None]
    for k in range(count):
        frames[k, 8:24, 4 + 8 * k : 16 + 8 * k] = 255
    return frames


def _decoded(path: Path) -> tuple[np.ndarray, list[int]]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = [(f.pts, f.to_ndarray(format="rgb24")) for f in container.decode(stream)]
    return np.stack([f for _, f in frames]).astype(int), [int(pts or 0) for pts, _ in frames]


def test_encoding_by_order_shows_the_repeated_frames_at_their_positions(tmp_path: Path) -> None:
    """Each distinct frame converted once and sent again for its repeats shows, position by
    position, the frame it stands for, with the timestamps of the repeated-frames encoding.
    Compared decoded, not byte for byte: the bitstream of x264's `veryfast` analysis was seen
    to differ between two encodings of the same frames deep into a long test run."""
    distinct = _smooth_frames()
    order = np.array([0, 0, 1, 1, 1, 2, 3, 3, 4, 4])
    _dirty_the_heap(1)
    encode_mp4(distinct[order], 30, tmp_path / "repeated.mp4")
    _dirty_the_heap(2)
    encode_mp4(distinct, 30, tmp_path / "ordered.mp4", order=order)
    repeated, repeated_pts = _decoded(tmp_path / "repeated.mp4")
    ordered, ordered_pts = _decoded(tmp_path / "ordered.mp4")
    assert ordered_pts == repeated_pts and len(ordered) == 10
    assert np.abs(ordered - repeated).mean() < 1.0
    source = distinct.astype(int)
    for position, index in enumerate(order):
        errors = [np.abs(ordered[position] - frame).mean() for frame in source]
        assert int(np.argmin(errors)) == index and errors[index] < 4.0
    assert probe_mp4(tmp_path / "ordered.mp4").frame_count == 10


def test_an_order_outside_the_frames_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="order must index"):
        encode_mp4(_FRAMES, 30, tmp_path / "bad.mp4", order=np.array([0, 5]))
