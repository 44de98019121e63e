"""Video inputs: sniff, probe and decode MP4 bodies from memory (api-contract §4).

Contract rules: MP4 only, ≥ 16 fps, ≤ 50 MB (enforced while downloading), only the first N
seconds are used (the caller's `max_seconds`: 5 s for `video_url`, 3 s for clips). The contract
enforces no resolution; this module adds server safety limits so a hostile file cannot exhaust
memory: a frame may have at most 3840×2160 pixels, and the decoded part of a video at most
`VIDEO_MAX_DECODED_PIXELS` pixels (both answered with InvalidFile.Resolution).

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

from vace_server.errors import InvalidFile
from vace_server.functions.base import VideoClip

logger = logging.getLogger(__name__)

VIDEO_MAX_BYTES = 50 * 1024 * 1024
VIDEO_MIN_FPS = 16
VIDEO_MAX_PIXELS = 3840 * 2160
"""Server safety limit per frame (not a contract rule): width × height of a 4K UHD frame."""
VIDEO_MAX_DECODED_PIXELS = VIDEO_MAX_PIXELS * 150
"""Server safety limit on everything one call decodes (≈ 3.7 GB as RGB): 5 s of 4K at 30 fps
or of 1080p at 120 fps. The contract sets no fps ceiling, so this is what bounds memory."""

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


def _format_error(field: str) -> InvalidFile:
    return InvalidFile(
        f"The format of {field} is not supported; allowed format: MP4.",
        code="InvalidFile.Format",
    )


def _fps_error(field: str, fps: float) -> InvalidFile:
    return InvalidFile(
        f"The frame rate of {field} is {fps:.3g} fps; the video must have at least "
        f"{VIDEO_MIN_FPS} fps.",
        code="InvalidFile.FPS",
    )


def _frame_size_error(field: str, width: int, height: int) -> InvalidFile:
    return InvalidFile(
        f"The resolution of {field} is {width}x{height}; this server decodes videos of at most "
        f"3840x2160 ({VIDEO_MAX_PIXELS} pixels per frame).",
        code="InvalidFile.Resolution",
    )


def _budget_error(field: str, width: int, height: int, fps: float) -> InvalidFile:
    return InvalidFile(
        f"The video {field} ({width}x{height} at {fps:.3g} fps) is too large to decode; this "
        f"server decodes at most {VIDEO_MAX_DECODED_PIXELS} pixels per video "
        "(e.g. 5 s of 3840x2160 at 30 fps).",
        code="InvalidFile.Resolution",
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
def _open_mp4(data: bytes, field: str) -> Iterator[InputContainer]:
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


def _probe_container(container: InputContainer, field: str) -> tuple[VideoProbe, VideoStream]:
    """Reads the first video stream's header figures and applies the probe checks.

    Raises: InvalidFile.Openerror (no usable video stream), InvalidFile.Resolution (frame
    larger than VIDEO_MAX_PIXELS), InvalidFile.FPS (< 16 fps)."""
    if not container.streams.video:
        logger.warning("%s: MP4 without a video stream", field)
        raise _open_error()
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


def probe_video(data: bytes, field: str) -> VideoProbe:
    """Checks an MP4 body from its headers, decoding no frame. `field` names the request field
    in error messages.

    Returns: the container's frame rate, frame count, duration, size and codec.
    Raises: InvalidFile with code InvalidFile.Format (not MP4), InvalidFile.Openerror
    (unreadable, no video stream), InvalidFile.FPS (< 16 fps), InvalidFile.Resolution (a frame
    above 3840×2160 pixels: a server safety limit, not a contract rule)."""
    with _open_mp4(data, field) as container:
        probe, _stream = _probe_container(container, field)
        return probe


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


def decode_video(data: bytes, field: str, *, max_seconds: float) -> VideoClip:
    """Probes (as `probe_video`, before any decoding), then decodes the first `max_seconds`.

    Keeps frames whose presentation time, counted from the first frame, is below
    `max_seconds` plus half a frame, and never more than `round(max_seconds * fps)` of them
    (at least one). Every kept source frame is returned, unresized; a display rotation
    (multiples of 90°) is applied, so `width`/`height` are the displayed size.

    Returns: a VideoClip (RGB frames, the source fps).
    Raises: everything `probe_video` raises; InvalidFile.Openerror when no frame decodes, the
    decoder fails, or the frame size changes mid-stream; InvalidFile.Resolution when the
    decoded part would exceed VIDEO_MAX_DECODED_PIXELS."""
    if max_seconds <= 0:
        raise ValueError(f"max_seconds must be positive, got {max_seconds}")
    with _open_mp4(data, field) as container:
        probe, stream = _probe_container(container, field)
        fps = probe.fps
        limit = max(1, round(max_seconds * fps))
        expected = min(limit, probe.frame_count or limit)
        if expected * probe.width * probe.height > VIDEO_MAX_DECODED_PIXELS:
            raise _budget_error(field, probe.width, probe.height, fps)
        cutoff = max_seconds + 0.5 / fps
        stream.thread_type = "AUTO"

        frames: list[Image.Image] = []
        decoded_pixels = 0
        origin: float | None = None
        try:
            for frame in container.decode(stream):
                if frame.time is None:
                    t = len(frames) / fps
                else:
                    origin = frame.time if origin is None else origin
                    t = frame.time - origin
                if t >= cutoff:
                    break
                pixels = frame.width * frame.height
                if pixels > VIDEO_MAX_PIXELS:
                    raise _frame_size_error(field, frame.width, frame.height)
                decoded_pixels += pixels
                if decoded_pixels > VIDEO_MAX_DECODED_PIXELS:
                    raise _budget_error(field, frame.width, frame.height, fps)
                image = _frame_image(frame)
                if frames and image.size != frames[0].size:
                    logger.warning(
                        "%s: frame size changed from %s to %s", field, frames[0].size, image.size
                    )
                    raise _open_error()
                frames.append(image)
                if len(frames) >= limit:
                    break
        except InvalidFile:
            raise
        except Exception as exc:  # decoder errors on a damaged or hostile bitstream
            logger.warning("%s: cannot decode %s video: %r", field, probe.codec, exc)
            raise _open_error() from exc
    if not frames:
        logger.warning("%s: no decodable frame", field)
        raise _open_error()
    width, height = frames[0].size
    return VideoClip(frames=frames, fps=fps, width=width, height=height)
