"""A corpus of hostile, damaged and odd media, each built in memory, with the answer the server
owes it (an `InvalidFile.*` code, or "ok" for odd but valid files). Not a test module:
`test_media.py` runs it, in-process and in a fresh process that measures its peak memory.

Each case goes through the code a task runs: videos through `open_video` and the sampling,
length check and per-frame resize of a `video_url` (or of an extension clip), images through
`load_image` (reference images) or `load_mask_image` (masks).

    PYTHONPATH=$PWD .venv/bin/python -m tests.hostile.media_corpus   # one JSON line per case
"""

from __future__ import annotations

import io
import json
import resource
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction

import av
import numpy as np
from av.video.stream import VideoStream
from PIL import Image

from tests.functions.fakes import PROFILE
from tests.support.images import png_bytes
from tests.support.videos import moving_square_frames, mp4_bytes, webm_bytes
from vace_server.api.wire_names import wire_message
from vace_server.errors import InputField, InvalidFile
from vace_server.functions import common
from vace_server.media.images import load_image, load_mask_image
from vace_server.media.video import open_video


@dataclass(frozen=True)
class Case:
    name: str
    use: str  # "video" (a video_url), "clip" (an extension clip), "image", "mask"
    build: Callable[[], bytes]
    expect: str  # the InvalidFile code, or "ok"


# ---------------------------------------------------------------- video builders
def _square(n: int, fps: float, size: tuple[int, int] = (64, 64)) -> bytes:
    return mp4_bytes(moving_square_frames(n, size=size, square=min(16, *size)), fps)


def _ftyp(data: bytes) -> bytes:
    return data[: int.from_bytes(data[:4], "big")]


def _patch(data: bytes, box: bytes, offset: int, value: bytes) -> bytes:
    """`value` written `offset` bytes after the first `box` type tag."""
    out = bytearray(data)
    at = out.index(box) + offset
    out[at : at + len(value)] = value
    return bytes(out)


def _u32(*values: int) -> bytes:
    return b"".join(v.to_bytes(4, "big") for v in values)


def _encode(
    frames: list[np.ndarray],
    *,
    rate: float = 16,
    pix_fmt: str = "yuv420p",
    pts: list[int] | None = None,
    time_base: Fraction | None = None,
    start_only: bool = False,
) -> bytes:
    """H.264 MP4 with a chosen pixel format and, optionally, explicit timestamps."""
    buf = io.BytesIO()
    height, width = frames[0].shape[:2] if frames else (64, 64)
    with av.open(buf, mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=Fraction(rate).limit_denominator(1001))
        assert isinstance(stream, VideoStream)
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        stream.options = {"preset": "ultrafast", "crf": "20"}
        if time_base is not None:
            stream.codec_context.time_base = time_base
        if start_only:
            container.start_encoding()
        for k, array in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(array, format="rgb24")
            if pts is not None:
                frame.pts = pts[k]
                frame.time_base = time_base
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return buf.getvalue()


def zero_frame_mp4() -> bytes:
    return _encode([], start_only=True)


def audio_only_mp4() -> bytes:
    buf = io.BytesIO()
    with av.open(buf, mode="w", format="mp4") as container:
        stream = container.add_stream("aac", rate=16000)
        for i in range(4):
            frame = av.AudioFrame.from_ndarray(
                np.zeros((1, 1024), np.float32), format="fltp", layout="mono"
            )
            frame.sample_rate, frame.pts = 16000, i * 1024
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return buf.getvalue()


def _zeroed_samples() -> bytes:
    data = _square(17, 16)
    mdat = data.index(b"mdat")
    size = int.from_bytes(data[mdat - 4 : mdat], "big")
    return data[: mdat + 4] + bytes(size - 8) + data[mdat - 4 + size :]


def _variable_rate() -> bytes:
    """30 frames at irregular times (1/100 s to 1/10 s apart), 24 fps on average."""
    gaps = [1, 10, 3, 7, 2, 9, 4, 6, 5, 5] * 3
    pts = [sum(gaps[:k]) for k in range(len(gaps))]
    return _encode(moving_square_frames(30), rate=24, pts=pts, time_base=Fraction(1, 100))


def _odd_size() -> bytes:
    """63x47: odd sides (4:4:4, as 4:2:0 needs even ones)."""
    return _encode(moving_square_frames(9, size=(63, 47)), pix_fmt="yuv444p")


def _faststart_truncated() -> bytes:
    import os
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "faststart.mp4")
        with av.open(path, "w", options={"movflags": "faststart"}) as container:
            stream = container.add_stream("libx264", rate=16)
            assert isinstance(stream, VideoStream)
            stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
            for array in moving_square_frames():
                container.mux(stream.encode(av.VideoFrame.from_ndarray(array, format="rgb24")))
            container.mux(stream.encode(None))
        with open(path, "rb") as f:
            data = f.read()
    return data[: len(data) * 3 // 4]


def _over_4k() -> bytes:
    """A legal file just over the per-frame limit: 4096x2176, flat, 2 frames."""
    return _encode([np.full((2176, 4096, 3), 90, np.uint8)] * 2)


# ---------------------------------------------------------------- image builders
def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def png_bomb(side: int, bit_depth: int = 1, colour_type: int = 0) -> bytes:
    """A side x side PNG of zeros, compressed row by row: a few hundred KB on disk, hundreds
    of MB once decoded. Never holds the raw image in memory while building."""
    row = b"\x00" + bytes((side * bit_depth * (3 if colour_type == 2 else 1) + 7) // 8)
    packer = zlib.compressobj(9)
    idat = b"".join(packer.compress(row) for _ in range(side)) + packer.flush()
    ihdr = struct.pack(">IIBBBBB", side, side, bit_depth, colour_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", idat)
        + _png_chunk(b"IEND", b"")
    )


def _save(image: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format=fmt, **kw)
    return buf.getvalue()


def _jpeg_huge_header() -> bytes:
    """A 400x400 JPEG whose frame header claims 65500x65500."""
    data = _save(Image.new("RGB", (400, 400), (20, 90, 160)), "JPEG")
    sof = data.index(b"\xff\xc0")
    return _patch(data, data[sof : sof + 2], 5, struct.pack(">HH", 65500, 65500))


def _webp_huge_canvas() -> bytes:
    """An animated WebP whose VP8X canvas claims 12000x12000 (frames are 16x16)."""
    frames = [Image.new("RGB", (16, 16), (40 * i, 0, 0)) for i in range(3)]
    data = _save(frames[0], "WEBP", save_all=True, append_images=frames[1:])
    side = (12000 - 1).to_bytes(3, "little")
    return _patch(data, b"VP8X", 12, side + side)


def _bmp_huge_header() -> bytes:
    data = _save(Image.new("RGB", (400, 400)), "BMP")
    return data[:18] + struct.pack("<ii", 30000, 30000) + data[26:]


def _tiff_huge_header() -> bytes:
    """A little-endian TIFF whose first IFD claims 40000x40000 (ImageWidth/ImageLength)."""
    data = bytearray(_save(Image.new("L", (8, 8)), "TIFF"))
    ifd = int.from_bytes(data[4:8], "little")
    for k in range(int.from_bytes(data[ifd : ifd + 2], "little")):
        entry = ifd + 2 + 12 * k
        tag, kind = struct.unpack("<HH", data[entry : entry + 4])
        if tag in (256, 257):  # ImageWidth, ImageLength
            value = struct.pack("<H", 40000) + b"\0\0" if kind == 3 else struct.pack("<I", 40000)
            data[entry + 8 : entry + 12] = value
    return bytes(data)


def _many_page_tiff(side: int) -> bytes:
    pages = [Image.new("L", (side, side), 8 * (i % 30)) for i in range(300)]
    return _save(pages[0], "TIFF", save_all=True, append_images=pages[1:], compression="tiff_lzw")


def _animated(fmt: str) -> bytes:
    frames = [Image.new("RGB", (400, 400), (60 * i, 80, 120)) for i in range(4)]
    return _save(frames[0], fmt, save_all=True, append_images=frames[1:], duration=40)


def _cmyk_jpeg() -> bytes:
    return _save(Image.new("CMYK", (400, 400), (10, 200, 30, 5)), "JPEG")


def _sixteen_bit_png() -> bytes:
    return png_bytes(Image.fromarray(np.full((400, 400), 40000, np.uint16)))


def _palette_alpha_png() -> bytes:
    image = Image.new("P", (400, 400), 1)
    image.putpalette([0, 0, 0, 200, 40, 40] + [0] * 762)
    return _save(image, "PNG", transparency=1)


def _rgba_png() -> bytes:
    return png_bytes(Image.new("RGBA", (400, 400), (200, 30, 30, 0)))


def _truncated_png() -> bytes:
    data = png_bytes(Image.effect_noise((400, 400), 60).convert("RGB"))
    return data[: len(data) // 2]


# ---------------------------------------------------------------- the corpus
CASES: list[Case] = [
    # Cheap to build first, so what each costs to refuse shows in the peak-memory figures
    # (`main`); the one expensive build (a 4K+ video) comes last.
    # images (reference images: [360, 2000] px)
    Case("png-bomb", "image", lambda: png_bomb(20000), "InvalidFile.Resolution"),
    Case("jpeg-huge-header", "image", _jpeg_huge_header, "InvalidFile.Resolution"),
    Case("webp-huge-canvas", "image", _webp_huge_canvas, "InvalidFile.Resolution"),
    Case("bmp-huge-header", "image", _bmp_huge_header, "InvalidFile.Resolution"),
    Case("tiff-huge-header", "image", _tiff_huge_header, "InvalidFile.Resolution"),
    Case(
        "too-small",
        "image",
        lambda: png_bytes(Image.new("RGB", (100, 100))),
        "InvalidFile.Resolution",
    ),
    Case("truncated-png", "image", _truncated_png, "InvalidFile.Openerror"),
    Case("text-as-image", "image", lambda: b"not an image at all\n" * 8, "InvalidFile.Format"),
    Case("animated-gif", "image", lambda: _animated("GIF"), "InvalidFile.Format"),
    Case("animated-webp", "image", lambda: _animated("WEBP"), "ok"),
    Case("many-page-tiff", "image", lambda: _many_page_tiff(400), "ok"),
    Case("cmyk-jpeg", "image", _cmyk_jpeg, "ok"),
    Case("16-bit-png", "image", _sixteen_bit_png, "ok"),
    Case("palette-alpha-png", "image", _palette_alpha_png, "ok"),
    Case("rgba-png", "image", _rgba_png, "ok"),
    # masks (no [360, 2000] rule; at most a video's 3840x2160 pixels)
    Case("mask-13000-squared", "mask", lambda: png_bomb(13000, 8), "InvalidFile.Resolution"),
    Case("mask-png-bomb", "mask", lambda: png_bomb(20000), "InvalidFile.Resolution"),
    Case("mask-jpeg-huge-header", "mask", _jpeg_huge_header, "InvalidFile.Resolution"),
    Case("mask-many-page-tiff", "mask", lambda: _many_page_tiff(16), "ok"),
    Case("mask-16-bit", "mask", _sixteen_bit_png, "ok"),
    Case("mask-gif", "mask", lambda: _animated("GIF"), "InvalidFile.Format"),
    # videos: damaged
    Case("truncated-mp4", "video", lambda: _square(17, 16)[:1500], "InvalidFile.Openerror"),
    Case(
        "mp4-header-then-garbage",
        "video",
        lambda: _ftyp(_square(5, 16)) + np.random.default_rng(7).bytes(20000),
        "InvalidFile.Openerror",
    ),
    Case("ftyp-only", "video", lambda: _ftyp(_square(5, 16)), "InvalidFile.Openerror"),
    Case("zeroed-samples", "video", _zeroed_samples, "InvalidFile.Openerror"),
    Case("faststart-truncated", "video", _faststart_truncated, "InvalidFile.Openerror"),
    Case("webm", "video", lambda: webm_bytes(moving_square_frames(5), 16), "InvalidFile.Format"),
    Case("empty-body", "video", lambda: b"", "InvalidFile.Format"),
    # videos: no frames, not a video, too short
    Case("zero-frames", "video", zero_frame_mp4, "InvalidFile.Duration"),
    Case("zero-frames-as-clip", "clip", zero_frame_mp4, "InvalidFile.Duration"),
    Case("audio-only", "video", audio_only_mp4, "InvalidFile.Format"),
    Case("one-frame", "video", lambda: _square(1, 16), "InvalidFile.Duration"),
    Case("quarter-second", "video", lambda: _square(4, 16), "InvalidFile.Duration"),
    Case("one-frame-clip", "clip", lambda: _square(1, 16), "ok"),
    Case("five-frames", "video", lambda: _square(5, 16), "ok"),
    # videos: lying headers
    Case(
        "huge-declared-dimensions",
        "video",
        lambda: _patch(_square(5, 16), b"avc1", 28, struct.pack(">HH", 60000, 60000)),
        "ok",  # the decoder's own size (64x64) is what counts, and what is checked
    ),
    Case("tiny-frames", "video", lambda: _square(9, 16, (8, 8)), "InvalidFile.Resolution"),
    Case(
        "huge-duration-claim",
        "video",
        lambda: _patch(
            _patch(_square(17, 16), b"mdhd", 20, _u32(0xFFFFFFF0)), b"mvhd", 20, _u32(0xFFFFFFF0)
        ),
        "ok",
    ),
    Case(
        "huge-frame-count-claim",
        "video",
        lambda: _patch(_square(17, 16), b"stts", 8, _u32(1, 0x7FFFFFFF, 1024)),
        "ok",
    ),
    Case(
        "huge-sample-table-claim",
        "video",
        lambda: _patch(_square(17, 16), b"stsz", 8, _u32(1, 0x3FFFFFFF)),
        "InvalidFile.Duration",
    ),
    Case(
        "hours-between-frames",
        "video",
        lambda: _patch(_square(17, 16), b"stts", 12, _u32(17, 0x7FFFFFFF)),
        "InvalidFile.FPS",
    ),
    Case("low-fps", "video", lambda: _square(9, 10), "InvalidFile.FPS"),
    # videos: odd but valid
    Case("variable-frame-rate", "video", _variable_rate, "ok"),
    Case(
        "rotated",
        "video",
        lambda: mp4_bytes(moving_square_frames(9, size=(64, 32)), 16, rotation=90),
        "ok",
    ),
    Case("odd-size", "video", _odd_size, "ok"),
    # built last: encoding 4096x2176 frames raises the peak by itself
    Case("over-4k-frames", "video", _over_4k, "InvalidFile.Resolution"),
]


def _use_video(data: bytes, field: InputField, *, clip: bool) -> str:
    """What a function does with a video_url (or an extension clip): open, check the length,
    sample for 16 fps, resize each kept frame to the generation size."""
    video = open_video(data, field, max_seconds=3.0 if clip else common.VIDEO_SECONDS)
    if not clip:
        common.require_video_length(video, field, PROFILE)
    size = common.generation_size(*common.within_720p(video.width, video.height), PROFILE)
    _, frames = common.sample_frames(
        video, PROFILE.num_frames, PROFILE.fps, common.covering(size), snap=not clip
    )
    assert frames and all(f.size == size for f in frames)
    return f"{len(frames)} frames of {size[0]}x{size[1]} from {video.width}x{video.height}"


def run(case: Case, data: bytes) -> tuple[str, str]:
    """Feeds one case's body. Returns: (the InvalidFile code or "ok", a detail line)."""
    try:
        if case.use in ("video", "clip"):
            field = InputField.FIRST_CLIP if case.use == "clip" else InputField.VIDEO
            return "ok", _use_video(data, field, clip=case.use == "clip")
        if case.use == "image":
            image = load_image(data, InputField.REFERENCES)
            return "ok", f"{image.mode} {image.size}"
        mask = load_mask_image(data, InputField.MASK_IMAGE)
        return "ok", f"{mask.mode} {mask.size}"
    except InvalidFile as exc:
        return exc.code, wire_message(exc.message)  # as clients see it


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def main() -> None:
    """Runs every case; prints one JSON line each with `grew_mb`, how far feeding it (not
    building it) raised the process's peak RSS, then the peak before and after."""
    start = peak_rss_mb()
    for case in CASES:
        data = case.build()
        before = peak_rss_mb()
        code, detail = run(case, data)
        grew = peak_rss_mb() - before
        print(json.dumps({"name": case.name, "code": code, "detail": detail, "grew_mb": grew}))
    print(json.dumps({"rss_before_mb": start, "rss_peak_mb": peak_rss_mb()}))


if __name__ == "__main__":
    main()
