"""H.264 MP4 writing (and a probe for tests) with PyAV."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import NamedTuple

import av
import numpy as np
from av.video.reformatter import ColorRange, Colorspace

# BT.709, limited range: what players assume for HD H.264; tagged so nobody has to guess.
_BT709 = 1


class Mp4Info(NamedTuple):
    """What `probe_mp4` reports."""

    frame_count: int
    width: int
    height: int
    fps: float
    codec_name: str
    has_audio: bool


def encode_mp4(
    frames: np.ndarray,
    fps: int,
    path: Path,
    *,
    order: np.ndarray | None = None,
    preset: str = "superfast",
    crf: int = 18,
) -> None:
    """Writes `frames` (uint8 (N, H, W, 3) RGB, H and W even) as H.264 yuv420p MP4 at `fps`,
    no audio, moov atom first (faststart), BT.709 limited range. With `order` (int, one
    index into `frames` per output position, as `output.DeliveredVideo` holds them) the video
    shows `frames[order]`, each distinct frame converted to YUV once however often it repeats
    (the same file as encoding the repeated frames one by one).

    The file is written next to `path` under a temporary name and moved into place with
    os.replace, so readers never see a partial video. `preset` (libx264's speed preset) trades
    CPU for file size and `crf` file size for quality; the worker passes the
    `output_x264_preset`/`output_crf` settings (defaults superfast/18).

    Returns: None. Raises: ValueError on a malformed array; av.error.FFmpegError / OSError
    when encoding or writing fails (no temporary file is left behind)."""
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or len(frames) < 1:
        raise ValueError(f"expected uint8 (N, H, W, 3) frames, got {frames.dtype} {frames.shape}")
    _n, height, width, _c = frames.shape
    assert width % 2 == 0 and height % 2 == 0, (
        f"H.264 yuv420p needs even size, got {width}x{height}"
    )
    if fps < 1:
        raise ValueError(f"bad fps {fps}")
    shown = np.arange(len(frames)) if order is None else np.asarray(order).reshape(-1)
    if len(shown) < 1 or shown.min() < 0 or shown.max() >= len(frames):
        raise ValueError(f"order must index the {len(frames)} frames, got {shown!r}")

    path = Path(path)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with av.open(
            str(tmp), mode="w", format="mp4", container_options={"movflags": "+faststart"}
        ) as container:
            stream = container.add_stream("libx264", rate=fps)
            stream.width = width
            stream.height = height
            stream.pix_fmt = "yuv420p"
            stream.options = {"preset": preset, "crf": str(crf)}
            ctx = stream.codec_context
            ctx.colorspace = ctx.color_primaries = ctx.color_trc = _BT709
            ctx.color_range = int(ColorRange.MPEG)
            converted, frame = -1, None
            for position, index in enumerate(shown):
                if frame is None or index != converted:
                    frame = _yuv_frame(frames[index])
                    converted = int(index)
                # The encoder keeps its own reference to what it was sent: a repeated frame is
                # sent again with the next timestamp, never converted again.
                frame.pts = position
                for packet in stream.encode(frame):
                    container.mux(packet)
            for packet in stream.encode(None):
                container.mux(packet)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _yuv_frame(array: np.ndarray) -> av.VideoFrame:
    """One RGB frame as the encoder's BT.709 limited-range yuv420p frame."""
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(array), format="rgb24")
    yuv = frame.reformat(
        format="yuv420p", dst_colorspace=Colorspace.ITU709, dst_color_range=ColorRange.MPEG
    )
    # Each plane's rows are padded to the allocator's alignment (a 24-pixel chroma row sits in
    # 32 bytes) and swscale leaves the padding as whatever the heap held. The x264 wrapper
    # reads whole rows, so that garbage changed the bitstream from run to run: zeroed, the same
    # frames always make the same file.
    for plane in yuv.planes:
        if plane.line_size > plane.width:
            rows = np.frombuffer(memoryview(plane), np.uint8).reshape(-1, plane.line_size)
            rows[:, plane.width :] = 0
    return yuv


def probe_mp4(path: Path) -> Mp4Info:
    """Reads the first video stream's properties (frames counted by decoding when the
    container does not say).

    Returns: Mp4Info(frame_count, width, height, fps, codec_name, has_audio).
    Raises: av.error.FFmpegError when the file cannot be read; ValueError without video."""
    with av.open(str(path)) as container:
        if not container.streams.video:
            raise ValueError(f"{path} has no video stream")
        stream = container.streams.video[0]
        count = stream.frames or sum(1 for _ in container.decode(stream))
        rate = stream.average_rate or stream.guessed_rate or 0
        return Mp4Info(
            frame_count=int(count),
            width=int(stream.codec_context.width),
            height=int(stream.codec_context.height),
            fps=float(rate),
            codec_name=str(stream.codec_context.name),
            has_audio=len(container.streams.audio) > 0,
        )
