"""Small synthetic test videos, encoded in memory with PyAV (no files, no network).

`moving_square_frames` draws a bright square that moves right by `step` px a frame over a dark
textured background, so a test can tell frames apart and check where the square is in frame k
(`square_box`). `mp4_bytes` encodes frames as MP4 (H.264 by default); `webm_bytes` and
`mkv_bytes` give other containers for format tests.
"""

from __future__ import annotations

import io
from fractions import Fraction

import av
import numpy as np
from av.video.stream import VideoStream

SQUARE_LEVEL = 235  # the square's value in every channel
BACKGROUND_MAX = 60  # background values stay at or below this


def square_box(
    k: int, size: tuple[int, int] = (64, 64), square: int = 16, step: int = 2
) -> tuple[int, int, int, int]:
    """Where `moving_square_frames` draws the square in frame `k`.

    The square starts at the left edge, vertically centred, and moves right by `step` px a
    frame; it wraps back to the left edge before it would leave the frame.

    Returns: (left, top, right, bottom), right/bottom exclusive."""
    width, height = size
    travel = width - square + 1
    left = (k * step) % travel
    top = (height - square) // 2
    return left, top, left + square, top + square


def moving_square_frames(
    n: int = 17,
    size: tuple[int, int] = (64, 64),
    square: int = 16,
    step: int = 2,
    fps: float = 16,
) -> list[np.ndarray]:
    """`n` deterministic RGB frames, each (height, width, 3) uint8; `size` is (width, height).

    The background is a dark checker texture with a faint diagonal gradient (values ≤ 60);
    the square is flat `SQUARE_LEVEL` grey, at `square_box(k, size, square, step)`. `fps` is
    accepted so call sites can pass one set of arguments to this and `mp4_bytes`; the pixels do
    not depend on it."""
    del fps
    width, height = size
    if square > min(width, height):
        raise ValueError(f"square {square} does not fit in {width}x{height}")
    ys, xs = np.mgrid[0:height, 0:width]
    checker = ((xs // 4 + ys // 4) % 2) * 20
    gradient = (xs + ys) * 20 // max(1, width + height - 2)
    background = np.stack(
        [10 + checker + gradient, 15 + checker, 25 + checker + (20 - gradient)], axis=-1
    ).astype(np.uint8)
    frames = []
    for k in range(n):
        frame = background.copy()
        left, top, right, bottom = square_box(k, size, square, step)
        frame[top:bottom, left:right] = SQUARE_LEVEL
        frames.append(frame)
    return frames


def _encode(
    frames: list[np.ndarray],
    fps: float,
    *,
    container_format: str,
    codec: str,
    options: dict[str, str] | None = None,
    rotation: int | None = None,
) -> bytes:
    if not frames:
        raise ValueError("no frames")
    height, width = frames[0].shape[:2]
    if width % 2 or height % 2:
        raise ValueError(f"yuv420p needs even sizes, got {width}x{height}")
    rate = Fraction(fps).limit_denominator(1001)
    buf = io.BytesIO()
    with av.open(buf, mode="w", format=container_format) as container:
        stream = container.add_stream(codec, rate=rate)
        assert isinstance(stream, VideoStream)
        stream.width = width
        stream.height = height
        stream.pix_fmt = "yuv420p"
        stream.options = dict(options or {})
        if rotation is not None:
            stream.set_display_rotation(rotation)
        for array in frames:
            if array.shape != (height, width, 3) or array.dtype != np.uint8:
                raise ValueError(f"frame {array.shape} {array.dtype} != ({height}, {width}, 3)")
            frame = av.VideoFrame.from_ndarray(array, format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return buf.getvalue()


def mp4_bytes(
    frames: list[np.ndarray], fps: float, *, codec: str = "libx264", rotation: int | None = None
) -> bytes:
    """Encodes RGB frames (H, W, 3) uint8 as an MP4 (yuv420p; H and W must be even).

    libx264 runs at high quality (crf 12) so pixel checks can use tight tolerances.
    `rotation` writes a display-matrix rotation (degrees, counter-clockwise) on the stream.

    Returns: the file's bytes."""
    options = {"crf": "12", "preset": "ultrafast"} if codec == "libx264" else {}
    return _encode(
        frames, fps, container_format="mp4", codec=codec, options=options, rotation=rotation
    )


def webm_bytes(frames: list[np.ndarray], fps: float) -> bytes:
    """Encodes RGB frames as a WebM (VP8): a Matroska container, not MP4.

    Returns: the file's bytes."""
    return _encode(frames, fps, container_format="webm", codec="libvpx")


def mkv_bytes(frames: list[np.ndarray], fps: float, *, codec: str = "libx264") -> bytes:
    """Encodes RGB frames as Matroska (H.264 by default): an MP4-compatible codec in the wrong
    container.

    Returns: the file's bytes."""
    return _encode(frames, fps, container_format="matroska", codec=codec)
