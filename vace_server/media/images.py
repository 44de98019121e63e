"""Image inputs: download through `UrlFetcher`, sniff, check, decode to RGB (docs/contract.md §4).

`MediaFetcher` (the `MediaSource` implementation) also fetches mask images and videos; video
checks and decoding live in `vace_server.media.video`."""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from collections.abc import Iterator

import numpy as np
from PIL import Image, ImageOps

from vace_server.errors import InputField, InvalidFile
from vace_server.media.clip import MediaSource, VideoClip
from vace_server.media.fetch import UrlFetcher
from vace_server.media.uploaded import UploadResolver, UploadScope, is_upload_url, read_upload
from vace_server.media.video import VIDEO_MAX_BYTES, VIDEO_MAX_PIXELS, open_video
from vace_server.settings import Settings

logger = logging.getLogger(__name__)

IMAGE_MAX_BYTES = 10 * 1024 * 1024
IMAGE_MIN_SIDE = 360
IMAGE_MAX_SIDE = 2000
ALLOWED_FORMATS_TEXT = "JPG, JPEG, PNG, BMP, TIFF, WEBP"
MASK_MAX_PIXELS = VIDEO_MAX_PIXELS
"""A mask must have its video's resolution, and no video above 3840×2160 pixels is decoded, so
a larger mask is refused from its header, before decoding (a server safety limit)."""


def sniff_image_format(data: bytes) -> str | None:
    """Identifies the container from its magic bytes (never the name or Content-Type).

    Returns: the Pillow format name ("JPEG", "PNG", "BMP", "TIFF", "WEBP") or None."""
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if data.startswith(b"BM") and len(data) >= 26:
        return "BMP"
    if data.startswith((b"II*\x00", b"MM\x00*")):
        return "TIFF"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return None


def _open_error() -> InvalidFile:
    return InvalidFile(
        "Invalid file, cannot open file as video/audio/image.", code="InvalidFile.Openerror"
    )


def _resolution_error(field: InputField, width: int, height: int) -> InvalidFile:
    return InvalidFile(
        f"The resolution of {field.mention} is {width}x{height}; width and height must each be in "
        f"[{IMAGE_MIN_SIDE}, {IMAGE_MAX_SIDE}] px.",
        code="InvalidFile.Resolution",
    )


def _open_sniffed(data: bytes, field: InputField, size_rule: str) -> Image.Image:
    """Sniffs the format and opens the body lazily (header only). `size_rule` ends the
    decompression-bomb message.

    Raises: InvalidFile.Format, InvalidFile.Resolution (decompression bomb), .Openerror."""
    fmt = sniff_image_format(data)
    if fmt is None:
        raise InvalidFile(
            f"The format of {field.mention} is not supported; allowed formats: "
            f"{ALLOWED_FORMATS_TEXT}.",
            code="InvalidFile.Format",
        )
    try:
        with warnings.catch_warnings():
            # Our own size limits apply right after this lazy open (header only), before any
            # pixel is decoded; Pillow's warning for images above its 89 MP limit adds nothing.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            return Image.open(io.BytesIO(data), formats=[fmt])
    except Image.DecompressionBombError as exc:
        logger.warning("%s: decompression bomb refused: %s", field, exc)
        raise InvalidFile(
            f"The resolution of {field.mention} is too large; {size_rule}",
            code="InvalidFile.Resolution",
        ) from exc
    except Exception as exc:  # Pillow raises many types for a bad header
        logger.warning("%s: cannot open %s image: %r", field, fmt, exc)
        raise _open_error() from exc


def load_image(data: bytes, field: InputField) -> Image.Image:
    """Checks and decodes an image body. `field` names the request field in error messages.

    Order: sniff the format, read only the header and check the size (so a decompression
    bomb is rejected before any pixel is decoded), decode, apply EXIF orientation, convert to
    RGB (alpha composited onto white; 16-bit scaled to 8-bit). Animated files use frame 0.

    Returns: an RGB image with width and height each in [360, 2000].
    Raises: InvalidFile with code InvalidFile.Format (not JPEG/PNG/BMP/TIFF/WEBP),
    InvalidFile.Openerror (undecodable), InvalidFile.Resolution (a side outside [360, 2000])."""
    image = _open_sniffed(
        data, field, f"width and height must each be in [{IMAGE_MIN_SIDE}, {IMAGE_MAX_SIDE}] px."
    )
    with image:
        width, height = image.size
        if not (
            IMAGE_MIN_SIDE <= width <= IMAGE_MAX_SIDE and IMAGE_MIN_SIDE <= height <= IMAGE_MAX_SIDE
        ):
            raise _resolution_error(field, width, height)
        try:
            image.load()
            oriented = ImageOps.exif_transpose(image)
            return _to_rgb(oriented)
        except Exception as exc:  # truncated data, bad chunks, unsupported sub-formats
            logger.warning("%s: cannot decode %s image: %r", field, image.format, exc)
            raise _open_error() from exc


def load_mask_image(data: bytes, field: InputField) -> Image.Image:
    """Checks and decodes a mask image body: the image formats, no [360, 2000] rule (a mask must
    match its video instead, checked by the caller).

    Pixel-exact: no resampling. EXIF orientation is applied (a lossless transpose); colour
    masks become luma (`convert("L")`, exact for grey values), alpha is ignored, 16-bit and
    float masks are scaled to 8-bit. Animated files use frame 0.

    The header's size is checked before decoding: above MASK_MAX_PIXELS (no video that large
    is decoded, and a mask must match its video) it is refused without decoding a pixel.

    Returns: an "L" image.
    Raises: InvalidFile with code InvalidFile.Format, InvalidFile.Openerror,
    InvalidFile.Resolution (above MASK_MAX_PIXELS)."""
    image = _open_sniffed(data, field, "this server refuses it as a decompression bomb.")
    with image:
        width, height = image.size
        if width * height > MASK_MAX_PIXELS:
            raise InvalidFile(
                f"The resolution of {field.mention} is {width}x{height}; a mask must match its "
                f"video, and this server decodes videos of at most 3840x2160 ({MASK_MAX_PIXELS} "
                "pixels).",
                code="InvalidFile.Resolution",
            )
        try:
            image.load()
            oriented = ImageOps.exif_transpose(image)
            return _to_mask(oriented)
        except Exception as exc:  # truncated data, bad chunks, unsupported sub-formats
            logger.warning("%s: cannot decode %s mask: %r", field, image.format, exc)
            raise _open_error() from exc


def _to_mask(image: Image.Image) -> Image.Image:
    """Returns an "L" copy: 16/32-bit and float values scaled like `_to_rgb`, alpha dropped,
    palette and colour modes through Pillow's `convert("L")` (luma)."""
    if image.mode.startswith("I;16") or image.mode in ("I", "F"):
        return _to_rgb(image).convert("L")
    return image.copy() if image.mode == "L" else image.convert("L")


def _to_rgb(image: Image.Image) -> Image.Image:
    """Returns an RGB copy: alpha composited onto white, 16/32-bit and float scaled to 8-bit."""
    mode = image.mode
    if mode.startswith("I;16") or mode == "I":
        arr = np.asarray(image, dtype=np.float64) / 257.0
        gray = Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8))
        return gray.convert("RGB")
    if mode == "F":
        arr = np.asarray(image, dtype=np.float64)
        gray = Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8))
        return gray.convert("RGB")
    has_alpha = mode in ("RGBA", "LA", "PA", "La", "RGBa") or (
        mode == "P" and "transparency" in image.info
    )
    if has_alpha:
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return image.convert("RGB")


@contextlib.contextmanager
def _declared_type(content_type: str | None) -> Iterator[None]:
    """A wrong-format error adds the Content-Type the media's server declared, the usual clue
    (an HTML error page served with status 200, a link to a viewer page instead of the file)."""
    try:
        yield
    except InvalidFile as exc:
        if exc.code != "InvalidFile.Format" or not content_type:
            raise
        # Printable ASCII only: the value is the media server's, and a message must never carry
        # the control characters of a field mention (vace_server.errors).
        declared = "".join(c for c in content_type.split(";", 1)[0] if " " < c <= "~")[:100]
        exc.message = f"{exc.message} Its server sent it as Content-Type: {declared}."
        raise


class MediaFetcher:
    """`MediaSource` over hostile URLs: `UrlFetcher` for the bytes, `load_image`,
    `load_mask_image` and `video.open_video` for checks and decoding.

    `oss://` URLs are refused (InvalidURL) unless the source has an upload resolver (`uploads`,
    injected by whoever builds it: the worker runtime passes its `UploadStore`) and is bound to
    a task by `for_task`; then they are read through it and go through the same checks as
    downloads."""

    def __init__(
        self,
        settings: Settings,
        fetcher: UrlFetcher | None = None,
        *,
        uploads: UploadResolver | None = None,
        scope: UploadScope | None = None,
    ) -> None:
        self._settings = settings
        self._fetcher = fetcher or UrlFetcher(settings)
        self._uploads = uploads
        self._scope = scope

    def for_task(self, account: str, model: str) -> MediaFetcher:
        """This source for one task: `oss://` keys resolve to uploads of `account` for `model`
        (through the injected resolver; without one they stay refused)."""
        scope = UploadScope(account, model)
        return MediaFetcher(self._settings, self._fetcher, uploads=self._uploads, scope=scope)

    def _read(self, url: str, field: InputField, max_bytes: int) -> tuple[bytes, str | None]:
        """The body and the Content-Type its server declared (None for uploads)."""
        if is_upload_url(url):
            return read_upload(self._uploads, self._scope, url, field, max_bytes), None
        media = self._fetcher.fetch(url, field=field, max_bytes=max_bytes)
        return media.data, media.content_type

    def fetch_image(self, url: str, field: InputField) -> Image.Image:
        """Downloads (≤ 10 MB) and checks one image.

        Returns: an RGB image with sides in [360, 2000].
        Raises: InvalidURL* (download), InvalidFile.Size / .Format / .Openerror / .Resolution."""
        data, content_type = self._read(url, field, IMAGE_MAX_BYTES)
        with _declared_type(content_type):
            return load_image(data, field)

    def fetch_mask_image(self, url: str, field: InputField) -> Image.Image:
        """Downloads (≤ 10 MB) and checks one mask image.

        Returns: an "L" image, pixel values as stored (see `load_mask_image`).
        Raises: InvalidURL* (download), InvalidFile.Size / .Format / .Openerror / .Resolution."""
        data, content_type = self._read(url, field, IMAGE_MAX_BYTES)
        with _declared_type(content_type):
            return load_mask_image(data, field)

    def fetch_video(self, url: str, field: InputField, *, max_seconds: float) -> VideoClip:
        """Downloads (≤ 50 MB) and checks (MP4, ≥ 16 fps, at least one frame) a video.

        Returns: a VideoClip of its first `max_seconds`, decoded by `read` (see
        `video.open_video`).
        Raises: InvalidURL* (download), InvalidFile.Size / .Format / .Openerror / .FPS /
        .Duration / .Resolution (server safety limit)."""
        data, content_type = self._read(url, field, VIDEO_MAX_BYTES)
        with _declared_type(content_type):
            return open_video(data, field, max_seconds=max_seconds)


def media_for_task(source: MediaSource, account: str, model: str) -> MediaSource:
    """`source` bound to one task's account and model (`MediaFetcher.for_task`), so its
    `oss://` uploads resolve; sources without uploads (test fakes) are returned as they are."""
    bind = getattr(source, "for_task", None)
    return bind(account, model) if callable(bind) else source
