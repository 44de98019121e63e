from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from vace_server.api.wire_names import wire_message
from vace_server.errors import InputField, InvalidFile
from vace_server.media.fetch import FetchedMedia
from vace_server.media.images import IMAGE_MAX_BYTES, MediaFetcher, load_image
from vace_server.settings import Settings


def _encode(image: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format=fmt, **kw)
    return buf.getvalue()


def _rgb(size: tuple[int, int] = (400, 380), colour: tuple[int, int, int] = (10, 120, 200)):
    return Image.new("RGB", size, colour)


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def _code(exc: pytest.ExceptionInfo[InvalidFile]) -> str:
    return exc.value.code


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "BMP", "TIFF", "WEBP"])
def test_allowed_formats(fmt: str) -> None:
    image = load_image(_encode(_rgb(), fmt), InputField.REFERENCES)
    assert image.mode == "RGB"
    assert image.size == (400, 380)
    r, g, b = image.getpixel((200, 190))  # type: ignore[misc]
    assert abs(r - 10) < 8 and abs(g - 120) < 8 and abs(b - 200) < 8


def test_gif_is_wrong_format() -> None:
    with pytest.raises(InvalidFile) as exc:
        load_image(_encode(_rgb().convert("P"), "GIF"), InputField.REFERENCES)
    assert _code(exc) == "InvalidFile.Format"
    message = wire_message(exc.value.message)
    assert "input.ref_images_url" in message and "WEBP" in message


def test_text_named_png_is_wrong_format() -> None:
    # the bytes decide, not the name: a text body served as "photo.png"
    with pytest.raises(InvalidFile) as exc:
        load_image(b"just some text, not an image\n", InputField.REFERENCES)
    assert _code(exc) == "InvalidFile.Format"


def test_corrupt_bytes_open_error() -> None:
    data = b"\x89PNG\r\n\x1a\n" + b"\x00garbage" * 20
    with pytest.raises(InvalidFile) as exc:
        load_image(data, InputField.REFERENCES)
    assert _code(exc) == "InvalidFile.Openerror"
    assert exc.value.message == "Invalid file, cannot open file as video/audio/image."


def test_truncated_body_open_error() -> None:
    noisy = Image.fromarray(np.random.default_rng(0).integers(0, 255, (400, 400, 3), np.uint8))
    data = _encode(noisy, "PNG")
    with pytest.raises(InvalidFile) as exc:
        load_image(data[: len(data) // 2], InputField.REFERENCES)
    assert _code(exc) == "InvalidFile.Openerror"


def test_too_small() -> None:
    with pytest.raises(InvalidFile) as exc:
        load_image(_encode(_rgb((100, 100)), "PNG"), InputField.FIRST_FRAME)
    assert _code(exc) == "InvalidFile.Resolution"
    message = wire_message(exc.value.message)
    assert "input.first_frame_url" in message and "[360, 2000]" in message


def test_too_wide() -> None:
    with pytest.raises(InvalidFile) as exc:
        load_image(_encode(Image.new("L", (2100, 400)), "PNG"), InputField.REFERENCES)
    assert _code(exc) == "InvalidFile.Resolution"


def test_bomb_rejected_from_header() -> None:
    # a PNG header declaring 30000 x 30000 pixels (and no pixel data): rejected from the header
    ihdr = struct.pack(">IIBBBBB", 30000, 30000, 8, 2, 0, 0, 0)
    data = b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IEND", b"")
    with pytest.raises(InvalidFile) as exc:
        load_image(data, InputField.REFERENCES)
    assert _code(exc) == "InvalidFile.Resolution"


def test_rgba_composited_on_white() -> None:
    rgba = Image.new("RGBA", (400, 400), (255, 0, 0, 0))
    rgba.paste((0, 0, 255, 255), (100, 100, 300, 300))
    image = load_image(_encode(rgba, "PNG"), InputField.REFERENCES)
    assert image.mode == "RGB"
    assert image.getpixel((10, 10)) == (255, 255, 255)
    assert image.getpixel((200, 200)) == (0, 0, 255)


def test_exif_orientation_applied() -> None:
    image = Image.new("RGB", (500, 400), (0, 200, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise when displayed
    out = load_image(_encode(image, "JPEG", exif=exif), InputField.REFERENCES)
    assert out.size == (400, 500)


def test_16bit_grayscale_scaled() -> None:
    arr = np.full((400, 400), 65535, np.uint16)
    data = _encode(Image.fromarray(arr), "PNG")
    assert load_image(data, InputField.REFERENCES).getpixel((0, 0)) == (255, 255, 255)


class _FakeFetcher:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.calls: list[tuple[str, str, int]] = []

    def fetch(self, url: str, *, field: InputField, max_bytes: int) -> FetchedMedia:
        self.calls.append((url, field, max_bytes))
        return FetchedMedia(self.data, "image/png", url)


def test_media_fetcher_uses_10mb_cap() -> None:
    fake = _FakeFetcher(_encode(_rgb(), "PNG"))
    source = MediaFetcher(Settings(), fetcher=fake)  # type: ignore[arg-type]
    image = source.fetch_image("http://a.example/1.png", InputField.REFERENCES)
    assert image.size == (400, 380)
    assert fake.calls == [("http://a.example/1.png", InputField.REFERENCES, IMAGE_MAX_BYTES)]
    assert IMAGE_MAX_BYTES == 10 * 1024 * 1024
