"""The demo's sample media, drawn by code (no downloaded or licensed material).

Deterministic: the same files byte for byte on every run with the same PyAV/libx264 build
(single-threaded `ultrafast` encoding, no timestamps in the container), so they are
committed under `samples/` and checked against a fresh drawing. Sizes follow the contract:
images have sides in [360, 2000] px; the videos are small (64×64, 16 fps, at most 17 frames:
what the tiny model generates), which the contract allows; a mask matches its video.

    python -m vace_server.demo.samples samples/     # (re)draw them
"""

from __future__ import annotations

import io
import sys
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image, ImageDraw

FPS = 16
CLIP_SIZE = 64  # px, square videos
CLIP_FRAMES = 17
SHORT_FRAMES = 8  # the first clip of video_extension: the server generates 17 frames in all
SQUARE = 16  # the moving square's side in the clip, px


# ---------------------------------------------------------------- images
def subject() -> Image.Image:
    """A red disc on plain white: a subject as the docs recommend for `obj` references."""
    img = Image.new("RGB", (400, 400), (255, 255, 255))
    ImageDraw.Draw(img).ellipse((100, 100, 300, 300), fill=(200, 30, 30))
    return img


def scene() -> Image.Image:
    """Sky over grass with a sun: a background reference (`bg`) and an extension's first frame."""
    img = Image.new("RGB", (480, 400), (120, 170, 230))
    draw = ImageDraw.Draw(img)
    draw.rectangle((0, 266, 480, 400), fill=(40, 140, 60))
    draw.ellipse((360, 40, 420, 100), fill=(250, 220, 80))
    return img


def _square_left(k: int) -> int:
    return (k * 2) % (CLIP_SIZE - SQUARE + 1)


def _square_box(k: int) -> tuple[int, int, int, int]:
    top = (CLIP_SIZE - SQUARE) // 2
    left = _square_left(k)
    return left, top, left + SQUARE, top + SQUARE


def mask() -> Image.Image:
    """White where the clip's square is in frame 1 (video_edit's `mask_image_url`, with
    `mask_frame_id` 1): the clip's size, as a mask image must match its video."""
    img = Image.new("L", (CLIP_SIZE, CLIP_SIZE), 0)
    img.paste(255, _square_box(0))
    return img


# ---------------------------------------------------------------- videos
def clip_frames(n: int = CLIP_FRAMES) -> list[np.ndarray]:
    """A light square moving right over a dark checker background, RGB uint8."""
    ys, xs = np.mgrid[0:CLIP_SIZE, 0:CLIP_SIZE]
    checker = ((xs // 4 + ys // 4) % 2) * 20
    background = np.stack([10 + checker, 15 + checker, 40 + checker], axis=-1).astype(np.uint8)
    frames = []
    for k in range(n):
        frame = background.copy()
        left, top, right, bottom = _square_box(k)
        frame[top:bottom, left:right] = (235, 200, 60)
        frames.append(frame)
    return frames


def mask_frames(n: int = CLIP_FRAMES) -> list[np.ndarray]:
    """White where the square is in each frame of the clip (video_edit's `mask_video_url`)."""
    frames = []
    for k in range(n):
        frame = np.zeros((CLIP_SIZE, CLIP_SIZE, 3), np.uint8)
        left, top, right, bottom = _square_box(k)
        frame[top:bottom, left:right] = 255
        frames.append(frame)
    return frames


def mp4_bytes(frames: list[np.ndarray]) -> bytes:
    """H.264 MP4 at FPS, one encoder thread. The `ultrafast` preset because x264's slower
    presets wrote different bytes for the same frames from one call to the next in one
    process (seen with PyAV's bundled libx264); ultrafast repeats itself exactly."""
    buf = io.BytesIO()
    with av.open(buf, mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height = CLIP_SIZE, CLIP_SIZE
        stream.pix_fmt = "yuv420p"
        stream.time_base = Fraction(1, FPS)
        stream.thread_type = "NONE"
        stream.thread_count = 1
        stream.options = {"crf": "18", "preset": "ultrafast", "threads": "1"}
        for k, array in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(array, format="rgb24")
            frame.pts = k
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return buf.getvalue()


def _png(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG", optimize=True)
    return buf.getvalue()


# file name -> how its bytes are drawn
SAMPLES: dict[str, Callable[[], bytes]] = {
    "subject.png": lambda: _png(subject()),
    "scene.png": lambda: _png(scene()),
    "mask.png": lambda: _png(mask()),
    "clip.mp4": lambda: mp4_bytes(clip_frames()),
    "short-clip.mp4": lambda: mp4_bytes(clip_frames(SHORT_FRAMES)),
    "mask-video.mp4": lambda: mp4_bytes(mask_frames()),
}


def write_samples(folder: Path) -> list[Path]:
    """Draws every sample into `folder` (created if missing). Returns the paths written."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, draw in SAMPLES.items():
        path = folder / name
        path.write_bytes(draw())
        written.append(path)
    return written


def main(argv: list[str]) -> int:
    folder = Path(argv[0] if argv else "samples")
    for path in write_samples(folder):
        print(f"{path}  {path.stat().st_size} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
