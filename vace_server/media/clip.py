"""What media sources hand to function modules: `VideoClip` (checked, decoded on demand),
`FrameList` (frames already in memory), `FramePrep` and the `MediaSource` protocol."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from typing import Protocol

from PIL import Image

from vace_server.errors import InputField

__all__ = ["FrameList", "FramePrep", "MediaSource", "VideoClip"]

FramePrep = Callable[[Image.Image], Image.Image]
"""What a function does to each kept frame (e.g. cover-crop it to the generation size)."""


class VideoClip(ABC):
    """An input video's first `max_seconds`, checked but not yet decoded.

    `fps`, `width`, `height` (the displayed size, rotation applied) and `frame_count` (source
    frames in the kept span) are known before any frame is decoded, so a function can work out
    its sizes and the frames it samples first, then `read` only those, each prepared (resized)
    as it is decoded: a full-size frame never outlives its own preparation."""

    def __init__(self, *, fps: float, width: int, height: int, frame_count: int) -> None:
        self.fps = fps
        self.width = width
        self.height = height
        self.frame_count = frame_count

    @property
    def seconds(self) -> float:
        """Length of the kept span: `frame_count` frames at `fps`."""
        return self.frame_count / self.fps

    def read(self, indices: Sequence[int], prepare: FramePrep) -> list[Image.Image]:
        """The source frames at `indices` (0-based, any order, repeats allowed), each passed
        through `prepare` once; the result follows `indices`.

        Raises: ValueError for an index outside [0, frame_count); InvalidFile.Openerror when
        the file does not decode (implementations)."""
        wanted = sorted(set(indices))
        if wanted and (wanted[0] < 0 or wanted[-1] >= self.frame_count):
            raise ValueError(f"frame index out of range 0..{self.frame_count - 1}: {indices}")
        prepared = {i: prepare(frame) for i, frame in self._frames(wanted)}
        missing = [i for i in wanted if i not in prepared]
        if missing:
            raise ValueError(f"{type(self).__name__} yielded no frame {missing[0]}")
        return [prepared[i] for i in indices]

    @abstractmethod
    def _frames(self, wanted: list[int]) -> Iterator[tuple[int, Image.Image]]:
        """(index, RGB frame) for each index in `wanted` (sorted, distinct), in order."""


class FrameList(VideoClip):
    """A VideoClip over frames already in memory (local callers and tests)."""

    def __init__(self, frames: Sequence[Image.Image], fps: float) -> None:
        if not frames:
            raise ValueError("a clip needs at least one frame")
        width, height = frames[0].size
        super().__init__(fps=fps, width=width, height=height, frame_count=len(frames))
        self.frames = list(frames)

    def _frames(self, wanted: list[int]) -> Iterator[tuple[int, Image.Image]]:
        for i in wanted:
            yield i, self.frames[i].convert("RGB")


class MediaSource(Protocol):
    """Fetches and checks a task's media. `field` is the input being read, named in error
    messages by its mention (the API shows its wire name)."""

    def fetch_image(self, url: str, field: InputField) -> Image.Image:
        """Returns an RGB image that passed the contract's image checks.

        Raises: InvalidURL*, InvalidFile.* (errors.ServiceError subclasses)."""
        ...

    def fetch_mask_image(self, url: str, field: InputField) -> Image.Image:
        """Returns an "L" image (format and size checks only; no [360, 2000] rule).

        Raises: InvalidURL*, InvalidFile.*."""
        ...

    def fetch_video(self, url: str, field: InputField, *, max_seconds: float) -> VideoClip:
        """Downloads and checks (MP4, fps >= 16, <= 50 MB, at least one frame) a video; its
        first `max_seconds` (the frame at exactly `max_seconds` included) are decoded later,
        by `VideoClip.read`.

        Raises: InvalidURL*, InvalidFile.* (Format, Openerror, FPS, Size, Duration)."""
        ...
