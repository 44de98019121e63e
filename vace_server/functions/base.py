"""What every function module produces, and the media seam it reads through."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from PIL import Image


@dataclass(frozen=True)
class VideoClip:
    """A decoded input video: the first `max_seconds` of it, every source frame, RGB."""

    frames: list[Image.Image]
    fps: float  # source frame rate
    width: int
    height: int

    @property
    def seconds(self) -> float:
        return len(self.frames) / self.fps


class MediaSource(Protocol):
    """Fetches and checks a task's media. `field` is the client-visible field name
    (e.g. `input.ref_images_url`) used in error messages."""

    def fetch_image(self, url: str, field: str) -> Image.Image:
        """Returns an RGB image that passed the contract's image checks.

        Raises: InvalidURL*, InvalidFile.* (errors.ServiceError subclasses)."""
        ...

    def fetch_mask_image(self, url: str, field: str) -> Image.Image:
        """Returns an "L" image (format and size checks only; no [360, 2000] rule).

        Raises: InvalidURL*, InvalidFile.*."""
        ...

    def fetch_video(self, url: str, field: str, *, max_seconds: float) -> VideoClip:
        """Downloads, probes (MP4, fps >= 16, <= 50 MB) and decodes the first `max_seconds`.

        Raises: InvalidURL*, InvalidFile.* (Format, Openerror, FPS, Size)."""
        ...


@dataclass(frozen=True)
class ModelProfile:
    """What a function module needs to know about the loaded model."""

    generation_area: int  # pixels; generation size keeps the output aspect within this area
    num_frames: int  # generated frames (4n+1)
    fps: int  # native frame rate of the model (16)


@dataclass(frozen=True)
class VaceInputs:
    """Keyword arguments for `WanVACEPipeline.__call__` plus what the output must become.

    Invariants (checked by `validate`): `video`/`mask`, when given, have exactly `num_frames`
    frames of exactly `width`x`height`; width and height are multiples of 16.
    `reference_images` are in VACE's order (the client's): the first one is the first latent
    frame. engine.runner reverses them for diffusers, which prepends each in turn.
    """

    width: int
    height: int
    num_frames: int
    output_size: tuple[int, int]  # (width, height) of the delivered video
    output_seconds: float  # duration of the delivered video
    video: list[Image.Image] | None = None
    mask: list[Image.Image] | None = None
    reference_images: list[Image.Image] | None = None
    conditioning_scale: float = 1.0

    def validate(self) -> None:
        """Raises ValueError when the pipeline would run silently misaligned."""
        if self.width % 16 or self.height % 16:
            raise ValueError(f"generation size {self.width}x{self.height} is not a multiple of 16")
        if (self.num_frames - 1) % 4:
            raise ValueError(f"num_frames {self.num_frames} is not 4n+1")
        for name, frames in (("video", self.video), ("mask", self.mask)):
            if frames is None:
                continue
            if len(frames) != self.num_frames:
                raise ValueError(f"{name} has {len(frames)} frames, expected {self.num_frames}")
            bad = [f.size for f in frames if f.size != (self.width, self.height)]
            if bad:
                raise ValueError(f"{name} frame size {bad[0]} != {(self.width, self.height)}")
        if self.mask is not None and self.video is None:
            raise ValueError("mask without video")
