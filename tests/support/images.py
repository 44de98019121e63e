"""Small synthetic test images (the contract wants each side in [360, 2000] px)."""

from __future__ import annotations

import io

from PIL import Image, ImageDraw


def png_bytes(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def subject_on_white(size: int = 400, color: tuple[int, int, int] = (200, 30, 30)) -> Image.Image:
    """A filled disc on a plain white background: what the docs recommend for `obj`."""
    img = Image.new("RGB", (size, size), (255, 255, 255))
    ImageDraw.Draw(img).ellipse((size // 4, size // 4, size * 3 // 4, size * 3 // 4), fill=color)
    return img


def scene(width: int = 480, height: int = 400) -> Image.Image:
    """A simple landscape: sky over grass."""
    img = Image.new("RGB", (width, height), (120, 170, 230))
    ImageDraw.Draw(img).rectangle((0, height * 2 // 3, width, height), fill=(40, 140, 60))
    return img
