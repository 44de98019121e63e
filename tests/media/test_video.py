from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from tests.hostile.media_corpus import audio_only_mp4
from tests.support.images import png_bytes
from tests.support.media_server import MediaServer, Served
from tests.support.videos import (
    BACKGROUND_MAX,
    SQUARE_LEVEL,
    mkv_bytes,
    moving_square_frames,
    mp4_bytes,
    square_box,
    webm_bytes,
)
from vace_server.api.wire_names import wire_message
from vace_server.errors import InputField, InvalidFile
from vace_server.media import images, video
from vace_server.media.fetch import FetchedMedia
from vace_server.media.images import IMAGE_MAX_BYTES, MediaFetcher
from vace_server.media.video import VIDEO_MAX_BYTES, open_video, probe_video
from vace_server.settings import Settings

FIELD = InputField.VIDEO
OPEN_ERROR = "Invalid file, cannot open file as video/audio/image."


@pytest.fixture(scope="module")
def square_mp4() -> bytes:
    return mp4_bytes(moving_square_frames(), 16)


@pytest.fixture(scope="module")
def six_seconds_mp4() -> bytes:
    return mp4_bytes(moving_square_frames(96, size=(32, 32), square=8), 16)


@pytest.fixture(scope="module")
def server() -> Iterator[MediaServer]:
    with MediaServer() as srv:
        yield srv


@pytest.fixture
def fetcher() -> MediaFetcher:
    return MediaFetcher(Settings(media_allow_private_networks=True))


def decode_all(data: bytes, field: InputField = FIELD, *, max_seconds: float) -> list[Image.Image]:
    """Every frame of the kept span, unresized."""
    clip = open_video(data, field, max_seconds=max_seconds)
    return clip.read(range(clip.frame_count), lambda frame: frame)


def _code(exc: pytest.ExceptionInfo[InvalidFile]) -> str:
    return exc.value.code


def _square_visible(image: Image.Image, box: tuple[int, int, int, int]) -> bool:
    """The inside of `box` is bright and the rest of the frame is dark (codec tolerance)."""
    arr = np.asarray(image, dtype=np.int16)
    left, top, right, bottom = box
    inside = arr[top + 2 : bottom - 2, left + 2 : right - 2]
    outside = arr.copy()
    outside[max(top - 2, 0) : bottom + 2, max(left - 2, 0) : right + 2] = 0
    return bool(inside.min() > SQUARE_LEVEL - 30 and outside.max() < BACKGROUND_MAX + 30)


# ---------------------------------------------------------------- probe
def test_probe_values(square_mp4: bytes) -> None:
    probe = probe_video(square_mp4, FIELD)
    assert probe.fps == 16
    assert probe.frame_count == 17
    assert probe.duration == pytest.approx(17 / 16)
    assert (probe.width, probe.height) == (64, 64)
    assert probe.codec == "h264"


def test_probe_non_integer_rate_other_codec() -> None:
    data = mp4_bytes(moving_square_frames(9, size=(48, 32)), 30000 / 1001, codec="mpeg4")
    probe = probe_video(data, FIELD)
    assert probe.fps == pytest.approx(29.97, abs=0.01)
    assert (probe.width, probe.height, probe.codec) == (48, 32, "mpeg4")
    assert probe.frame_count == 9


# ---------------------------------------------------------------- decode
def test_decode_frames_and_pixels(square_mp4: bytes) -> None:
    clip = open_video(square_mp4, FIELD, max_seconds=5)
    assert (clip.frame_count, clip.width, clip.height, clip.fps) == (17, 64, 64, 16)
    assert clip.seconds == pytest.approx(17 / 16)
    frames = clip.read(range(17), lambda frame: frame)
    for k, frame in enumerate(frames):
        assert frame.mode == "RGB" and frame.size == (64, 64)
        assert _square_visible(frame, square_box(k)), f"square misplaced in frame {k}"
    # the square really moves: frame 0's box is dark in frame 16
    assert not _square_visible(frames[16], square_box(0))


def test_trims_to_first_five_seconds_the_frame_at_5s_included(six_seconds_mp4: bytes) -> None:
    assert probe_video(six_seconds_mp4, FIELD).duration == pytest.approx(6.0)
    clip = open_video(six_seconds_mp4, FIELD, max_seconds=5)
    assert clip.frame_count == 81  # 0 .. 5 s at 16 fps: Wan's own 81 frames
    frames = clip.read([0, 40, 80], lambda frame: frame)
    for k, frame in zip((0, 40, 80), frames, strict=True):  # the first frames, in order
        assert _square_visible(frame, square_box(k, (32, 32), 8))


def test_trims_clip_to_three_seconds(six_seconds_mp4: bytes) -> None:
    assert open_video(six_seconds_mp4, FIELD, max_seconds=3).frame_count == 49


def test_trim_at_non_integer_rate() -> None:
    data = mp4_bytes(moving_square_frames(40, size=(32, 32), square=8), 25, codec="mpeg4")
    # frames 0 .. 37 are at 0 .. 1.48 s; frame 38 (1.52 s) is past 1.5 s
    assert len(decode_all(data, max_seconds=1.5)) == 38


def test_short_video_kept_whole() -> None:
    data = mp4_bytes(moving_square_frames(1, size=(32, 32), square=8), 16)
    clip = open_video(data, FIELD, max_seconds=5)
    assert clip.frame_count == 1
    assert clip.seconds == pytest.approx(1 / 16)
    assert len(clip.read([0], lambda frame: frame)) == 1


def test_display_rotation_applied() -> None:
    frames = moving_square_frames(5, size=(64, 32))
    data = mp4_bytes(frames, 16, rotation=90)  # displayed turned 90° counter-clockwise
    assert (probe_video(data, FIELD).width, probe_video(data, FIELD).height) == (64, 32)
    clip = open_video(data, FIELD, max_seconds=5)
    assert (clip.width, clip.height) == (32, 64)  # known before any frame is read
    (third,) = clip.read([3], lambda frame: frame)
    expected = np.rot90(frames[3]).astype(np.int16)
    assert np.abs(np.asarray(third, dtype=np.int16) - expected).mean() < 6


def test_max_seconds_must_be_positive(square_mp4: bytes) -> None:
    with pytest.raises(ValueError):
        open_video(square_mp4, FIELD, max_seconds=0)


# ---------------------------------------------------------------- format
@pytest.mark.parametrize(
    "data",
    [
        pytest.param(png_bytes(Image.new("RGB", (32, 32))), id="png"),
        pytest.param(webm_bytes(moving_square_frames(5), 16), id="webm"),
        pytest.param(mkv_bytes(moving_square_frames(5), 16), id="matroska-h264"),
        pytest.param(b"just some text named clip.mp4\n" * 4, id="text"),
        pytest.param(b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic", id="heic"),
        pytest.param(b"", id="empty"),
    ],
)
def test_not_mp4_is_wrong_format(data: bytes) -> None:
    for check in (
        lambda: probe_video(data, InputField.FIRST_CLIP),
        lambda: open_video(data, InputField.FIRST_CLIP, max_seconds=3),
    ):
        with pytest.raises(InvalidFile) as exc:
            check()
        assert _code(exc) == "InvalidFile.Format"
        message = wire_message(exc.value.message)
        assert "input.first_clip_url" in message and "MP4" in message


# ---------------------------------------------------------------- unreadable
def _ftyp_box(data: bytes) -> bytes:
    return data[: int.from_bytes(data[:4], "big")]


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda d: d[: len(d) // 2], id="truncated"),
        pytest.param(lambda d: d[:-200], id="truncated-tail"),
        pytest.param(
            lambda d: _ftyp_box(d) + np.random.default_rng(1).bytes(4000), id="garbage-after-ftyp"
        ),
        pytest.param(_ftyp_box, id="ftyp-only"),
    ],
)
def test_unreadable_mp4_open_error(square_mp4: bytes, damage: Callable[[bytes], bytes]) -> None:
    data = damage(square_mp4)
    assert data[4:8] == b"ftyp"
    with pytest.raises(InvalidFile) as exc:
        decode_all(data, max_seconds=5)
    assert _code(exc) == "InvalidFile.Openerror"
    assert exc.value.message == OPEN_ERROR


def test_audio_only_mp4_has_no_video_stream() -> None:
    with pytest.raises(InvalidFile) as exc:
        open_video(audio_only_mp4(), FIELD, max_seconds=5)
    assert _code(exc) == "InvalidFile.Format"
    message = wire_message(exc.value.message)
    assert "input.video_url" in message and "no video stream" in message


def test_corrupt_bitstream_open_error(square_mp4: bytes) -> None:
    # container intact, every sample byte zeroed: demuxes, never decodes a frame
    mdat = square_mp4.index(b"mdat")
    size = int.from_bytes(square_mp4[mdat - 4 : mdat], "big")
    data = square_mp4[: mdat + 4] + bytes(size - 8) + square_mp4[mdat - 4 + size :]
    assert len(data) == len(square_mp4)
    with pytest.raises(InvalidFile) as exc:
        decode_all(data, max_seconds=5)
    assert _code(exc) == "InvalidFile.Openerror"


# ---------------------------------------------------------------- fps and safety limits
@pytest.mark.parametrize("fps", [10, 15])
def test_low_fps_rejected(fps: int) -> None:
    data = mp4_bytes(moving_square_frames(5, size=(32, 32), square=8), fps)
    for check in (
        lambda: probe_video(data, InputField.LAST_CLIP),
        lambda: open_video(data, InputField.LAST_CLIP, max_seconds=3),
    ):
        with pytest.raises(InvalidFile) as exc:
            check()
        assert _code(exc) == "InvalidFile.FPS"
        assert "input.last_clip_url" in wire_message(exc.value.message)
        assert "at least 16 fps" in exc.value.message


def test_frame_size_cap(square_mp4: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(video, "VIDEO_MAX_PIXELS", 64 * 63)
    with pytest.raises(InvalidFile) as exc:
        probe_video(square_mp4, FIELD)
    assert _code(exc) == "InvalidFile.Resolution"
    message = wire_message(exc.value.message)
    assert "input.video_url" in message and "64x64" in message


def test_decoded_pixel_budget(square_mp4: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(video, "VIDEO_MAX_DECODED_PIXELS", 64 * 64 * 10)
    probe_video(square_mp4, FIELD)  # the header alone is fine
    with pytest.raises(InvalidFile) as exc:
        open_video(square_mp4, FIELD, max_seconds=5)
    assert _code(exc) == "InvalidFile.Resolution"
    assert open_video(square_mp4, FIELD, max_seconds=0.5).frame_count == 9  # 0 .. 0.5 s


def test_real_limits() -> None:
    assert VIDEO_MAX_BYTES == 50 * 1024 * 1024
    assert video.VIDEO_MIN_FPS == 16
    assert video.VIDEO_MAX_PIXELS == 3840 * 2160


# ---------------------------------------------------------------- through MediaFetcher
class _FakeFetcher:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.calls: list[tuple[str, str, int]] = []

    def fetch(self, url: str, *, field: InputField, max_bytes: int) -> FetchedMedia:
        self.calls.append((url, field, max_bytes))
        return FetchedMedia(self.data, None, url)


def test_fetch_video_over_loopback(
    server: MediaServer, fetcher: MediaFetcher, six_seconds_mp4: bytes
) -> None:
    # served with a misleading name and type: the bytes decide
    url = server.add("/clip.webm", Served(six_seconds_mp4, "text/plain"))
    clip = fetcher.fetch_video(url, FIELD, max_seconds=5)
    assert (clip.frame_count, clip.fps, clip.width, clip.height) == (81, 16, 32, 32)


def test_fetch_video_not_mp4_over_loopback(server: MediaServer, fetcher: MediaFetcher) -> None:
    url = server.add("/video.mp4", Served(webm_bytes(moving_square_frames(3), 16), "video/mp4"))
    with pytest.raises(InvalidFile) as exc:
        fetcher.fetch_video(url, FIELD, max_seconds=5)
    assert _code(exc) == "InvalidFile.Format"


def test_fetch_video_too_large(
    server: MediaServer,
    fetcher: MediaFetcher,
    square_mp4: bytes,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(images, "VIDEO_MAX_BYTES", len(square_mp4) - 1)
    url = server.add("/big.mp4", Served(square_mp4, "video/mp4"))
    with pytest.raises(InvalidFile) as exc:
        fetcher.fetch_video(url, InputField.FIRST_CLIP, max_seconds=3)
    assert _code(exc) == "InvalidFile.Size"
    assert "input.first_clip_url" in wire_message(exc.value.message)


def test_fetch_video_uses_50mb_cap(square_mp4: bytes) -> None:
    fake = _FakeFetcher(square_mp4)
    source = MediaFetcher(Settings(), fetcher=fake)  # type: ignore[arg-type]
    clip = source.fetch_video("http://a.example/v.mp4", FIELD, max_seconds=0.5)
    assert clip.frame_count == 9
    assert fake.calls == [("http://a.example/v.mp4", FIELD, VIDEO_MAX_BYTES)]


# ---------------------------------------------------------------- mask images
MASK_FIELD = InputField.MASK_IMAGE


def _mask_array(width: int = 40, height: int = 24) -> np.ndarray:
    values = np.arange(width * height, dtype=np.uint32) * 7 % 256
    return values.reshape(height, width).astype(np.uint8)


def _encode(image: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format=fmt, **kw)
    return buf.getvalue()


def test_mask_image_pixel_exact_over_loopback(server: MediaServer, fetcher: MediaFetcher) -> None:
    mask = _mask_array()
    url = server.add("/mask.png", Served(png_bytes(Image.fromarray(mask))))
    out = fetcher.fetch_mask_image(url, MASK_FIELD)
    assert out.mode == "L" and out.size == (40, 24)  # no [360, 2000] rule for masks
    assert np.array_equal(np.asarray(out), mask)


@pytest.mark.parametrize("fmt", ["PNG", "BMP", "TIFF"])
def test_grey_rgb_mask_stays_exact(fmt: str) -> None:
    mask = _mask_array()
    rgb = Image.fromarray(np.stack([mask] * 3, axis=-1))
    out = MediaFetcher(Settings(), fetcher=_FakeFetcher(_encode(rgb, fmt))).fetch_mask_image(  # type: ignore[arg-type]
        "http://a.example/m", MASK_FIELD
    )
    assert out.mode == "L"
    assert np.array_equal(np.asarray(out), mask)


def test_mask_binary_and_16bit() -> None:
    binary = Image.fromarray(_mask_array() > 128).convert("1")
    out = images.load_mask_image(_encode(binary, "PNG"), MASK_FIELD)
    assert set(np.unique(np.asarray(out))) <= {0, 255}
    deep = Image.fromarray(np.full((8, 8), 65535, np.uint16))
    assert images.load_mask_image(_encode(deep, "PNG"), MASK_FIELD).getpixel((0, 0)) == 255


def test_mask_exif_orientation_applied() -> None:
    mask = _mask_array()
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise when displayed
    out = images.load_mask_image(_encode(Image.fromarray(mask), "PNG", exif=exif), MASK_FIELD)
    assert out.size == (24, 40)
    assert np.array_equal(np.asarray(out), np.rot90(mask, k=-1))


def test_mask_wrong_format_and_cap() -> None:
    gif = _encode(Image.fromarray(_mask_array()).convert("P"), "GIF")
    with pytest.raises(InvalidFile) as exc:
        images.load_mask_image(gif, MASK_FIELD)
    assert _code(exc) == "InvalidFile.Format" and "input.mask_image_url" in wire_message(
        exc.value.message
    )
    fake = _FakeFetcher(png_bytes(Image.fromarray(_mask_array())))
    MediaFetcher(Settings(), fetcher=fake).fetch_mask_image("http://a.example/m", MASK_FIELD)  # type: ignore[arg-type]
    assert fake.calls == [("http://a.example/m", MASK_FIELD, IMAGE_MAX_BYTES)]


def test_mask_corrupt_open_error() -> None:
    data = png_bytes(Image.fromarray(_mask_array()))
    with pytest.raises(InvalidFile) as exc:
        images.load_mask_image(data[: len(data) // 2], MASK_FIELD)
    assert _code(exc) == "InvalidFile.Openerror"


def test_truncated_samples_with_index_first_open_error(tmp_path: Path) -> None:
    # "faststart" layout (moov before mdat): the index survives, the samples are cut short
    path = str(tmp_path / "faststart.mp4")
    with av.open(path, "w", options={"movflags": "faststart"}) as container:
        stream = container.add_stream("libx264", rate=16)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        for array in moving_square_frames():
            container.mux(stream.encode(av.VideoFrame.from_ndarray(array, format="rgb24")))
        container.mux(stream.encode(None))
    data = Path(path).read_bytes()
    assert data.index(b"moov") < data.index(b"mdat")
    assert len(decode_all(data, max_seconds=5)) == 17
    with pytest.raises(InvalidFile) as exc:
        decode_all(data[: len(data) * 3 // 4], max_seconds=5)
    assert _code(exc) == "InvalidFile.Openerror"
