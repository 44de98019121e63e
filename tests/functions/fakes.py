"""Synthetic media and helpers shared by the video function tests (not a test module)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
from PIL import Image, ImageOps

from vace_server.api.wire_names import wire_name
from vace_server.errors import InputField
from vace_server.media.clip import FrameList, VideoClip
from vace_server.model_inputs import ModelProfile

# 64x64 px budget, 17 frames at 16 fps: small enough for the tiny pipeline on CPU.
PROFILE = ModelProfile(generation_area=64 * 64, num_frames=17, fps=16)
GRAY = (128, 128, 128)


def noise(size: tuple[int, int], seed: int) -> Image.Image:
    """A unique RGB image per seed (values 0..255), so frames can be told apart exactly."""
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))


def clip(
    count: int, fps: float = 16.0, size: tuple[int, int] = (64, 48), seed: int = 0
) -> FrameList:
    """`count` distinct noise frames; frame i is `noise(size, seed * 1000 + i)`."""
    return FrameList([noise(size, seed * 1000 + i) for i in range(count)], fps)


def box_mask(
    size: tuple[int, int], box: tuple[int, int, int, int], value: int = 255
) -> Image.Image:
    """ "L" mask, `value` inside the box (x0, y0, x1, y1; x1/y1 exclusive), 0 elsewhere."""
    a = np.zeros((size[1], size[0]), np.uint8)
    x0, y0, x1, y1 = box
    a[y0:y1, x0:x1] = value
    return Image.fromarray(a, mode="L")


def arr(image: Image.Image) -> np.ndarray:
    return np.asarray(image).astype(int)


def same(a: Image.Image, b: Image.Image) -> bool:
    return a.size == b.size and a.mode == b.mode and np.array_equal(np.asarray(a), np.asarray(b))


def invert(image: Image.Image) -> Image.Image:
    """What the fake control annotators render."""
    return ImageOps.invert(image.convert("RGB"))


class FakeMedia:
    """MediaSource over dicts; cuts videos to `max_seconds` like the real fetcher (the frame at
    exactly `max_seconds` kept) and records every call as (kind, url, field, max_seconds), the
    field by the wire name a client sees.
    `reads` records the frame indices each `read` of a fetched clip asked for."""

    def __init__(
        self,
        videos: dict[str, FrameList] | None = None,
        images: dict[str, Image.Image] | None = None,
        masks: dict[str, Image.Image] | None = None,
    ) -> None:
        self.videos = videos or {}
        self.images = images or {}
        self.masks = masks or {}
        self.calls: list[tuple[str, str, str, float | None]] = []
        self.reads: list[tuple[str, list[int]]] = []

    def fetch_image(self, url: str, field: InputField) -> Image.Image:
        self.calls.append(("image", url, wire_name(field), None))
        return self.images[url].copy()

    def fetch_mask_image(self, url: str, field: InputField) -> Image.Image:
        self.calls.append(("mask", url, wire_name(field), None))
        return self.masks[url].copy()

    def fetch_video(self, url: str, field: InputField, *, max_seconds: float) -> VideoClip:
        self.calls.append(("video", url, wire_name(field), max_seconds))
        source = self.videos[url]
        keep = min(source.frame_count, math.floor(max_seconds * source.fps + 1e-6) + 1)
        return _RecordedClip([f.copy() for f in source.frames[:keep]], source.fps, self, url)

    def fields(self) -> list[str]:
        return [field for _, _, field, _ in self.calls]


class _RecordedClip(FrameList):
    def __init__(self, frames: list[Image.Image], fps: float, media: FakeMedia, url: str) -> None:
        super().__init__(frames, fps)
        self._media, self._url = media, url

    def read(
        self, indices: Sequence[int], prepare: Callable[[Image.Image], Image.Image]
    ) -> list[Image.Image]:
        self._media.reads.append((self._url, list(indices)))
        return super().read(indices, prepare)


class RecordingAnnotator:
    """Inverts frames (like the shared fake) and records what it was given."""

    backend = "classical"

    def __init__(self, name: str) -> None:
        self.name = name
        self.seen: list[list[Image.Image]] = []

    def annotate(self, frames: Sequence[Image.Image]) -> list[Image.Image]:
        self.seen.append(list(frames))
        return [invert(f) for f in frames]


def run_tiny(inputs: object) -> np.ndarray:
    """Runs the tiny random pipeline (2 steps, CPU) on built inputs; returns (T, H, W, 3)."""
    from vace_server.engine.loader import load_model
    from vace_server.engine.runner import generate
    from vace_server.model_inputs import VaceInputs
    from vace_server.settings import Settings

    assert isinstance(inputs, VaceInputs)
    model = load_model(
        Settings(
            model="tiny", num_frames=PROFILE.num_frames, generation_area=PROFILE.generation_area
        )
    )
    assert model.profile == PROFILE
    return generate(model, inputs, prompt="a cat dance", negative_prompt="negative", seed=3)


def recording_cut(seen: list[Image.Image]) -> Callable[[Image.Image], Image.Image]:
    """A cut-out (segmenter) that only records the images it was given."""

    def cut(image: Image.Image) -> Image.Image:
        seen.append(image)
        return image

    return cut
