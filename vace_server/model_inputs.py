"""The model-input contract between `functions/` (which build inputs) and `engine/` (which runs
them): `VaceInputs`, `ModelProfile` and the generation-size rule `fit_area`.

Pure Python plus PIL (no torch), so the API process can import `functions/` cheaply; neither
`functions/` nor `engine/` imports the other, both import this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from PIL import Image

__all__ = ["ModelProfile", "VaceInputs", "fit_area"]


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


def fit_area(width: int, height: int, max_area: int, cell: int = 16) -> tuple[int, int]:
    """Largest `cell`-aligned (width, height) within `max_area` pixels for a `width`x`height` frame.

    The model works in 16-px cells (VAE 8 x patch 2). Among all grids of `cols` x `rows` cells
    with `cols * rows <= max_area // cell**2`, `cols <= width // cell` and
    `rows <= height // cell` (never upscaling past the input's own cells), pick the one that
    holds the largest rectangle of the input's exact aspect ratio -- i.e. the most resolution
    left after the frame is cover-cropped into it -- breaking ties by the smaller aspect
    distortion, then by the larger area. This reproduces the 1.3B size table (docs/model-inputs.md)
    (1280x720 -> 832x480, 720x1280 -> 480x832, 960x960 -> 624x624, 832x1088 -> 544x720,
    1088x832 -> 720x544), leaves the 14B sizes unchanged at 1280*720, is symmetric under
    swapping width and height, and returns a cell-aligned input that fits the budget as is.

    Returns: (width, height), both multiples of `cell`.
    Raises: ValueError when the input or the budget is smaller than one cell.
    """
    if width < cell or height < cell:
        raise ValueError(f"frame {width}x{height} is smaller than one {cell}-px cell")
    budget = max_area // (cell * cell)
    if budget < 1:
        raise ValueError(f"area budget {max_area} is smaller than one {cell}-px cell")
    max_cols, max_rows = width // cell, height // cell
    aspect = Fraction(width, height)

    best: tuple[Fraction, Fraction, int] | None = None
    best_grid = (1, 1)
    for rows in range(1, min(max_rows, budget) + 1):
        cols_cap = min(max_cols, budget // rows)
        # For a fixed row count the held area grows with cols up to rows*aspect, then stays;
        # the distortion is smallest next to rows*aspect. So only these candidates matter.
        ideal = rows * aspect
        for cols in {
            min(cols_cap, int(ideal)),
            min(cols_cap, -(-ideal.numerator // ideal.denominator)),
        }:
            if cols < 1:
                continue
            grid = Fraction(cols, rows)
            # Area (in cells) of the largest aspect-exact rectangle inside cols x rows.
            held = min(Fraction(rows * rows) * aspect, Fraction(cols * cols) / aspect)
            distortion = max(grid / aspect, aspect / grid)
            key = (held, -distortion, cols * rows)
            if best is None or key > best:
                best, best_grid = key, (cols, rows)
    return best_grid[0] * cell, best_grid[1] * cell
