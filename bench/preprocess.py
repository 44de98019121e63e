"""Preprocessing time per function for a 5 s 720p input (decode → inputs for the pipeline),
with the weight-free annotators, at the 1.3B model's generation area (832x480, 81 frames).

    .venv/bin/python -m bench.preprocess

Reports wall time per function and its ratio to the plain decode of the same input, measured
side by side in one run (absolute times on a shared 2-core machine are noisy)."""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from vace_server.annotators.base import AnnotatorSet
from vace_server.annotators.registry import load_annotators
from vace_server.errors import InputField
from vace_server.functions import build_inputs
from vace_server.media.clip import VideoClip
from vace_server.media.encode import encode_mp4
from vace_server.media.images import load_image, load_mask_image
from vace_server.media.video import open_video
from vace_server.model_inputs import ModelProfile
from vace_server.settings import Settings
from vace_server.tasks.spec import Control, Outpaint, TaskSpec, VaceFunction

PROFILE_1_3B = ModelProfile(generation_area=832 * 480, num_frames=81, fps=16)
WIDTH, HEIGHT, FPS, SECONDS = 1280, 720, 30, 5


def _clip_bytes(tmp: Path) -> bytes:
    """5 s of 720p at 30 fps: a disc moving over a gradient."""
    frames = np.empty((FPS * SECONDS, HEIGHT, WIDTH, 3), np.uint8)
    ramp = np.linspace(0, 200, WIDTH, dtype=np.uint8)
    for i in range(len(frames)):
        img = Image.fromarray(np.broadcast_to(ramp[None, :, None], (HEIGHT, WIDTH, 3)).copy())
        x = 200 + 5 * i
        ImageDraw.Draw(img).ellipse((x, 260, x + 200, 460), fill=(230, 40, 40))
        frames[i] = np.asarray(img)
    path = tmp / "clip.mp4"
    encode_mp4(frames, FPS, path)
    return path.read_bytes()


class LocalMedia:
    """MediaSource over in-memory bytes, through the same loaders as downloads."""

    def __init__(self, blobs: dict[str, bytes]) -> None:
        self.blobs = blobs

    def fetch_image(self, url: str, field: InputField) -> Image.Image:
        return load_image(self.blobs[url], field)

    def fetch_mask_image(self, url: str, field: InputField) -> Image.Image:
        return load_mask_image(self.blobs[url], field)

    def fetch_video(self, url: str, field: InputField, *, max_seconds: float) -> VideoClip:
        return open_video(self.blobs[url], field, max_seconds=max_seconds)


def _png(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def _specs() -> dict[str, TaskSpec]:
    return {
        "video_repainting (scribble)": TaskSpec(
            function=VaceFunction.VIDEO_REPAINTING,
            video_url="v",
            control=Control.SCRIBBLE,
            prompt="p",
            seed=1,
        ),
        "video_edit (tracking, hull)": TaskSpec(
            function=VaceFunction.VIDEO_EDIT,
            video_url="v",
            mask_image_url="m",
            size=(1280, 720),
            prompt="p",
            seed=1,
        ),
        "video_extension (first clip)": TaskSpec(
            function=VaceFunction.VIDEO_EXTENSION, first_clip_url="v", prompt="p", seed=1
        ),
        "video_outpainting (1.5 each side)": TaskSpec(
            function=VaceFunction.VIDEO_OUTPAINTING,
            video_url="v",
            outpaint=Outpaint(1.5, 1.5, 1.5, 1.5),
            prompt="p",
            seed=1,
        ),
    }


def _time(fn: Callable[[], object], repeat: int = 2) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def _decode_all(data: bytes) -> None:
    """Every frame of the first 5 s decoded to RGB (the plain decode the ratios refer to)."""
    clip = open_video(data, InputField.VIDEO, max_seconds=5)
    clip.read(range(clip.frame_count), lambda frame: frame)


def main() -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        clip = _clip_bytes(Path(tmp))
    mask = Image.new("L", (WIDTH, HEIGHT), 0)
    ImageDraw.Draw(mask).ellipse((200, 260, 400, 460), fill=255)
    media = LocalMedia({"v": clip, "m": _png(mask)})
    annotators: AnnotatorSet = load_annotators(Settings(annotator_dir=None))
    decode = _time(lambda: _decode_all(clip))
    print(f"input: {WIDTH}x{HEIGHT}, {FPS} fps, {SECONDS} s; profile {PROFILE_1_3B}")
    print(f"{'decode only':36s} {decode:7.2f} s   1.00x")
    for name, spec in _specs().items():
        seconds = _time(partial(build_inputs, spec, media, PROFILE_1_3B, annotators=annotators))
        print(f"{name:36s} {seconds:7.2f} s  {seconds / decode:5.2f}x")


if __name__ == "__main__":
    main()
