"""Video inputs: sniff, probe and decode MP4 bodies from memory (docs/contract.md §4).

Contract rules: MP4 only, ≥ 16 fps, ≤ 50 MB (enforced while downloading), only the first N
seconds are used (the caller's `max_seconds`: 5 s for `video_url`, 3 s for clips; the frame at
exactly N s is kept, so Wan's own 81-frame 16 fps videos keep all 81). The contract enforces no
resolution; this module adds server safety limits so a hostile file cannot exhaust the worker:
a frame may have at most 3840×2160 pixels, and the kept part of a video at most
`VIDEO_MAX_DECODED_PIXELS` pixels (both answered with InvalidFile.Resolution).

Memory does not grow with resolution or length: `open_video` reads only the container's
packets (to count the kept frames) and decodes a single frame (for the display rotation);
`Mp4Clip.read` then decodes frame by frame, converts only the frames asked for and hands each
to the caller's preparation (the resize to the generation size) before decoding the next, so
at most one full-size frame exists at a time.

Only the mov/mp4 demuxer ever sees the bytes (the format is forced after the `ftyp` sniff, and
external data references are disabled), so a body cannot steer FFmpeg into another demuxer
(playlists, concat lists) or make it open other files.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction

import av
from av.container import InputContainer
from av.video.frame import VideoFrame
from av.video.stream import VideoStream
from PIL import Image

from vace_server.errors import InputField, InvalidFile
from vace_server.media.clip import VideoClip

logger = logging.getLogger(__name__)

VIDEO_MAX_BYTES = 50 * 1024 * 1024
VIDEO_MIN_FPS = 16
VIDEO_MAX_PIXELS = 3840 * 2160
"""Server safety limit per frame (not a contract rule): width × height of a 4K UHD frame."""
VIDEO_MAX_DECODED_PIXELS = VIDEO_MAX_PIXELS * 151
"""Server safety limit on the pixels of the kept span: 5 s of 4K at 30 fps (151 frames, the
one at 5 s included) or of 1080p at 120 fps. Frames are decoded one at a time, so this bounds
decoding time (the contract sets no fps ceiling), not memory."""
REORDER_SLACK = 256
"""Packets read past the kept span's frame limit before counting stops: far more than any
codec's reordering depth (H.264 allows 16), so no frame of the span is missed."""

OPEN_ERROR_MESSAGE = "Invalid file, cannot open file as video/audio/image."
_MOV_FAMILY = frozenset({"mov", "mp4", "m4a", "3gp", "3g2", "mj2"})
_IMAGE_BRANDS = frozenset(
    {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1", b"avif", b"avis"}
)
"""Major brands of HEIF/AVIF still images and image sequences: ISO-BMFF, but not MP4 video."""


@dataclass(frozen=True)
class VideoProbe:
    """What the container says, read before any frame is decoded.

    `frame_count` and `duration` are the container's figures (estimates: a damaged or hostile
    file may decode to fewer frames). `width` and `height` are the stored size, before any
    display rotation; `codec` is the FFmpeg decoder name (e.g. "h264")."""

    fps: float
    frame_count: int
    duration: float
    width: int
    height: int
    codec: str


# ---------------------------------------------------------------- errors
def _open_error() -> InvalidFile:
    return InvalidFile(OPEN_ERROR_MESSAGE, code="InvalidFile.Openerror")


def _format_error(field: InputField) -> InvalidFile:
    return InvalidFile(
        f"The format of {field.mention} is not supported; allowed format: MP4.",
        code="InvalidFile.Format",
    )


def _fps_error(field: InputField, fps: float) -> InvalidFile:
    return InvalidFile(
        f"The frame rate of {field.mention} is {fps:.3g} fps; the video must have at least "
        f"{VIDEO_MIN_FPS} fps.",
        code="InvalidFile.FPS",
    )


def _frame_size_error(field: InputField, width: int, height: int) -> InvalidFile:
    return InvalidFile(
        f"The resolution of {field.mention} is {width}x{height}; this server decodes videos of "
        f"at most 3840x2160 ({VIDEO_MAX_PIXELS} pixels per frame).",
        code="InvalidFile.Resolution",
    )


def _budget_error(field: InputField, width: int, height: int, fps: float) -> InvalidFile:
    return InvalidFile(
        f"The video {field.mention} ({width}x{height} at {fps:.3g} fps) is too large to decode; "
        f"this server decodes at most {VIDEO_MAX_DECODED_PIXELS} pixels per video "
        "(e.g. 5 s of 3840x2160 at 30 fps).",
        code="InvalidFile.Resolution",
    )


def _no_video_error(field: InputField) -> InvalidFile:
    return InvalidFile(
        f"{field.mention} has no video stream (an audio-only or data-only MP4); a video is needed.",
        code="InvalidFile.Format",
    )


def _no_frames_error(field: InputField) -> InvalidFile:
    return InvalidFile(
        f"{field.mention} has no video frames; a video with at least one frame is needed.",
        code="InvalidFile.Duration",
    )


# ---------------------------------------------------------------- sniffing and opening
def sniff_mp4(data: bytes) -> bool:
    """True when the body starts with an ISO-BMFF `ftyp` box whose major brand is not a still
    image format (HEIF/AVIF). The name and Content-Type never count."""
    if len(data) < 12 or data[4:8] != b"ftyp":
        return False
    box_size = int.from_bytes(data[:4], "big")
    if box_size not in (0, 1) and box_size < 12:
        return False
    return data[8:12] not in _IMAGE_BRANDS


@contextmanager
def _open_mp4(data: bytes, field: InputField) -> Iterator[InputContainer]:
    """Opens the body with the mov/mp4 demuxer, from memory.

    Raises: InvalidFile.Format (not MP4), InvalidFile.Openerror (the demuxer rejects it)."""
    if not sniff_mp4(data):
        raise _format_error(field)
    try:
        container = av.open(
            io.BytesIO(data), mode="r", format="mov", container_options={"enable_drefs": "0"}
        )
    except Exception as exc:  # FFmpeg raises many error types for a bad header
        logger.warning("%s: cannot open as MP4: %r", field, exc)
        raise _open_error() from exc
    try:
        if not set(container.format.name.split(",")) <= _MOV_FAMILY:
            logger.warning("%s: demuxed as %s", field, container.format.name)
            raise _format_error(field)
        yield container
    finally:
        container.close()


def _as_float(rate: Fraction | int | float | None) -> float | None:
    if rate is None:
        return None
    value = float(rate)
    return value if value > 0 else None


def _has_top_level_box(data: bytes, kind: bytes) -> bool:
    """True when the ISO-BMFF body has a complete top-level box of type `kind`."""
    offset = 0
    while offset + 8 <= len(data):
        size = int.from_bytes(data[offset : offset + 4], "big")
        header = 8
        if size == 1 and offset + 16 <= len(data):
            size, header = int.from_bytes(data[offset + 8 : offset + 16], "big"), 16
        elif size == 0:
            size = len(data) - offset
        if size < header or offset + size > len(data):
            return False
        if data[offset + 4 : offset + 8] == kind:
            return True
        offset += size
    return False


def _probe_container(
    container: InputContainer, field: InputField, data: bytes
) -> tuple[VideoProbe, VideoStream]:
    """Reads the first video stream's header figures and applies the probe checks.

    Raises: InvalidFile.Openerror (no stream and no complete index, a video stream without a
    size or rate), InvalidFile.Duration (a complete index without any sample),
    InvalidFile.Format (streams, but none of them video), InvalidFile.Resolution (frame
    larger than VIDEO_MAX_PIXELS), InvalidFile.FPS (< 16 fps)."""
    if not container.streams:
        logger.warning("%s: MP4 without any stream", field)
        # FFmpeg drops tracks without samples: a complete index with none left is an empty
        # video, not an unreadable file.
        raise _no_frames_error(field) if _has_top_level_box(data, b"moov") else _open_error()
    if not container.streams.video:
        logger.warning("%s: MP4 without a video stream", field)
        raise _no_video_error(field)
    stream = container.streams.video[0]
    ctx = stream.codec_context
    width, height = int(ctx.width or 0), int(ctx.height or 0)
    if width <= 0 or height <= 0:
        logger.warning("%s: video stream without a size", field)
        raise _open_error()
    if width * height > VIDEO_MAX_PIXELS:
        raise _frame_size_error(field, width, height)

    duration = 0.0
    if stream.duration is not None and stream.time_base is not None:
        duration = float(stream.duration * stream.time_base)
    elif container.duration is not None:
        duration = container.duration / av.time_base
    duration = max(duration, 0.0)
    frame_count = max(int(stream.frames or 0), 0)

    fps = _as_float(stream.average_rate) or _as_float(stream.guessed_rate)
    if fps is None and frame_count and duration:
        fps = frame_count / duration
    if fps is None:
        logger.warning("%s: cannot determine the frame rate", field)
        raise _open_error()
    if fps < VIDEO_MIN_FPS:
        raise _fps_error(field, fps)

    if not frame_count:
        frame_count = round(duration * fps)
    if not duration and frame_count:
        duration = frame_count / fps
    codec = ctx.name or "unknown"
    return VideoProbe(fps, frame_count, duration, width, height, codec), stream


def probe_video(data: bytes, field: InputField) -> VideoProbe:
    """Checks an MP4 body from its headers, decoding no frame. `field` names the request field
    in error messages.

    Returns: the container's frame rate, frame count, duration, size and codec.
    Raises: InvalidFile with code InvalidFile.Format (not MP4, or no video stream),
    InvalidFile.Openerror (unreadable), InvalidFile.FPS (< 16 fps), InvalidFile.Resolution (a
    frame above 3840×2160 pixels: a server safety limit, not a contract rule)."""
    with _open_mp4(data, field) as container:
        probe, _stream = _probe_container(container, field, data)
        return probe


# ---------------------------------------------------------------- the kept span
@dataclass(frozen=True)
class _Span:
    """Where the kept span lies in presentation time: frames with `time - origin < cutoff`,
    at most `count` of them."""

    origin: float
    cutoff: float
    count: int


def _time_of(pts: int | None, dts: int | None, stream: VideoStream) -> float | None:
    stamp = pts if pts is not None else dts
    if stamp is None or stream.time_base is None:
        return None
    return float(stamp * stream.time_base)


def _past_span(decode_time: float | None, earliest: float | None, cutoff: float) -> bool:
    """Decode times only grow and a frame never shows before it is decoded, so a packet
    decoded more than a second past the span's end ends the span."""
    if decode_time is None or earliest is None:
        return False
    return decode_time - earliest > cutoff + 1.0


def _scan_packets(
    container: InputContainer, stream: VideoStream, probe: VideoProbe, max_seconds: float
) -> tuple[_Span, VideoFrame | None]:
    """Counts the frames of the kept span from the packets' timestamps (no decoding, except
    the first frame, returned for its display rotation).

    The span keeps frames whose presentation time, counted from the first frame, is below
    `max_seconds` plus half a frame (so the frame at exactly `max_seconds` is in), and at
    most `round(max_seconds * fps) + 1` of them. Packets the demuxer marks as discarded (cut
    by an edit list) decode to no frame and are not counted."""
    fps = probe.fps
    cutoff = max_seconds + 0.5 / fps
    limit = round(max_seconds * fps) + 1
    times: list[float] = []
    untimed = 0
    earliest: float | None = None
    first: VideoFrame | None = None
    for packet in container.demux(stream):
        if packet.size == 0:
            continue
        if first is None:  # a discarded packet may be the reference of the first frame shown
            first = next(iter(packet.decode()), None)
        if packet.is_discard:
            continue
        t = _time_of(packet.pts, packet.dts, stream)
        if t is None:
            untimed += 1
        else:
            times.append(t)
            earliest = t if earliest is None else min(earliest, t)
        decode_time = _time_of(packet.dts, packet.pts, stream)
        if _past_span(decode_time, earliest, cutoff):
            break
        if len(times) + untimed > limit + REORDER_SLACK:
            break
    if first is None:  # B-frames: the first frame comes out only when the decoder drains
        first = next(iter(stream.codec_context.decode(None)), None)
    if not times:
        return _Span(0.0, cutoff, min(limit, untimed)), first
    times.sort()
    origin = times[0]
    inside = sum(1 for t in times if t - origin < cutoff)
    return _Span(origin, cutoff, min(limit, inside + untimed)), first


def _displayed_size(probe: VideoProbe, first: VideoFrame) -> tuple[int, int]:
    if int(first.rotation or 0) % 180 == 90:
        return probe.height, probe.width
    return probe.width, probe.height


# ---------------------------------------------------------------- decoding
def _frame_image(frame: VideoFrame) -> Image.Image:
    """The frame as RGB with its display rotation applied (a lossless transpose)."""
    image = frame.to_image()
    rotation = int(frame.rotation or 0) % 360
    if rotation == 90:
        return image.transpose(Image.Transpose.ROTATE_90)
    if rotation == 180:
        return image.transpose(Image.Transpose.ROTATE_180)
    if rotation == 270:
        return image.transpose(Image.Transpose.ROTATE_270)
    return image


class Mp4Clip(VideoClip):
    """A checked MP4 body and its kept span; frames are decoded only by `read`."""

    def __init__(
        self, data: bytes, field: InputField, probe: VideoProbe, span: _Span, size: tuple[int, int]
    ) -> None:
        super().__init__(fps=probe.fps, width=size[0], height=size[1], frame_count=span.count)
        self._data = data
        self._field = field
        self._probe = probe
        self._span = span

    def _frames(self, wanted: list[int]) -> Iterator[tuple[int, Image.Image]]:
        """Decodes in presentation order up to the last wanted frame; converts (and rotates)
        only the wanted ones. The caller prepares each before the next is decoded.

        Raises: InvalidFile.Openerror when the decoder fails, the frame size changes, or the
        stream ends before the frames the container promised."""
        if not wanted:
            return
        field, probe, span = self._field, self._probe, self._span
        keep = set(wanted)
        k = 0
        with _open_mp4(self._data, field) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            try:
                for frame in container.decode(stream):
                    t = (k / probe.fps) if frame.time is None else frame.time - span.origin
                    if t >= span.cutoff:
                        break
                    if (frame.width, frame.height) != (probe.width, probe.height):
                        logger.warning(
                            "%s: frame size changed from %dx%d to %dx%d",
                            field,
                            probe.width,
                            probe.height,
                            frame.width,
                            frame.height,
                        )
                        raise _open_error()
                    if k in keep:
                        yield k, _frame_image(frame)
                    k += 1
                    if k > wanted[-1]:
                        return
            except InvalidFile:
                raise
            except Exception as exc:  # decoder errors on a damaged or hostile bitstream
                logger.warning("%s: cannot decode %s video: %r", field, probe.codec, exc)
                raise _open_error() from exc
        logger.warning("%s: %d frames decoded, the container promised %d", field, k, span.count)
        raise _open_error()


def open_video(data: bytes, field: InputField, *, max_seconds: float) -> Mp4Clip:
    """Checks an MP4 body and finds its first `max_seconds` (the frame at exactly
    `max_seconds` included, at most `round(max_seconds * fps) + 1` frames), decoding one frame.

    Returns: an Mp4Clip: source fps, displayed size (rotation applied), the kept span's frame
    count; `read` decodes the frames.
    Raises: everything `probe_video` raises; InvalidFile.Duration (no frame), .Openerror (the
    first frame does not decode), .Resolution (the span exceeds VIDEO_MAX_DECODED_PIXELS)."""
    if max_seconds <= 0:
        raise ValueError(f"max_seconds must be positive, got {max_seconds}")
    with _open_mp4(data, field) as container:
        probe, stream = _probe_container(container, field, data)
        try:
            span, first = _scan_packets(container, stream, probe, max_seconds)
        except Exception as exc:  # demuxer or decoder errors on a damaged body
            logger.warning("%s: cannot read %s packets: %r", field, probe.codec, exc)
            raise _open_error() from exc
        if span.count == 0:
            raise _no_frames_error(field)
        if first is None:
            logger.warning("%s: no decodable frame", field)
            raise _open_error()
        size = _displayed_size(probe, first)
    if span.count * probe.width * probe.height > VIDEO_MAX_DECODED_PIXELS:
        raise _budget_error(field, probe.width, probe.height, probe.fps)
    return Mp4Clip(data, field, probe, span, size)
