"""Pipeline frames → delivered frames: retime, resize to the exact output size, watermark."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from vace_server.media.watermark import apply_watermark


def retime_indices(num_input: int, num_output: int) -> np.ndarray:
    """Frame-nearest retiming: `num_output` indices spread evenly over `num_input` frames.

    Returns: int64 indices, first 0 and last `num_input - 1` (a single output takes frame 0).
    Raises: ValueError when either count is < 1."""
    if num_input < 1 or num_output < 1:
        raise ValueError(f"cannot retime {num_input} frames to {num_output}")
    if num_output == 1:
        return np.zeros(1, dtype=np.int64)
    positions = np.linspace(0.0, num_input - 1, num_output)
    return np.floor(positions + 0.5).astype(np.int64)


def _resize(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """float32 (h, w, 3) in [0, 1] → uint8 (H, W, 3); area filter when shrinking, bicubic when
    enlarging. The frame is quantised to uint8 at its own (pipeline) size first and resized as
    uint8: a quarter of the memory traffic of a float resize, and OpenCV's uint8 path
    saturates, so bicubic overshoot cannot wrap."""
    width, height = size
    h, w = frame.shape[:2]
    quantised = np.clip(np.rint(frame * 255.0), 0, 255).astype(np.uint8)
    if (w, h) == (width, height):
        return quantised
    shrinking = width <= w and height <= h
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_CUBIC
    return cv2.resize(quantised, (width, height), interpolation=interpolation)


def delivered_order(num_input: int, seconds: float, fps: int) -> tuple[np.ndarray, np.ndarray]:
    """The delivered video's N = max(1, round(seconds * fps)) positions over `num_input` frames
    (`retime_indices`), each distinct frame once: (picked, order), `picked` the input indices
    used (ascending) and `order` int64 (N,) the index into `picked` shown at each position."""
    count = max(1, round(seconds * fps))
    picked, order = np.unique(retime_indices(num_input, count), return_inverse=True)
    return picked, order.astype(np.int64).reshape(-1)


@dataclass(frozen=True)
class DeliveredVideo:
    """The delivered video with each distinct frame held once: `frames` uint8 (U, H, W, 3)
    and `order` int64 (N,), the index into `frames` shown at each of the N output positions
    (non-decreasing). Retiming to 30 fps repeats most frames; holding them once saves the
    memory and lets the encoder convert each one once (`encode.encode_mp4`'s `order`)."""

    frames: np.ndarray
    order: np.ndarray

    def __len__(self) -> int:
        return len(self.order)

    @property
    def width(self) -> int:
        return int(self.frames.shape[2])

    @property
    def height(self) -> int:
        return int(self.frames.shape[1])

    def expanded(self) -> np.ndarray:
        """uint8 (N, H, W, 3): every output position, repeats included."""
        return self.frames[self.order]


def render_video(
    frames: np.ndarray,
    *,
    size: tuple[int, int],
    seconds: float,
    fps: int,
    watermark: bool,
    font_path: Path | None,
) -> DeliveredVideo:
    """Turns pipeline output into the delivered video.

    `frames`: float32 (T, h, w, 3) in [0, 1] (the pipeline's native rate, 16 fps).
    `size`: (W, H) of the delivered video. N = max(1, round(seconds * fps)) frames are picked
    evenly over the input (first and last kept), each resized to exactly W x H; with
    `watermark` the bottom-right mark is drawn (see `watermark.apply_watermark`).

    Returns: the N frames as a DeliveredVideo (each distinct input frame resized once).
    Raises: ValueError on a malformed array, a non-positive size, seconds or fps."""
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.shape[0] < 1:
        raise ValueError(f"expected (T, h, w, 3) frames, got shape {frames.shape}")
    width, height = size
    if width < 1 or height < 1 or fps < 1 or seconds <= 0:
        raise ValueError(f"bad output size {size}, seconds {seconds} or fps {fps}")
    picked, order = delivered_order(frames.shape[0], seconds, fps)

    out = np.empty((len(picked), height, width, 3), dtype=np.uint8)
    for k, i in enumerate(picked):
        out[k] = _resize(np.asarray(frames[i], dtype=np.float32), size)
    if watermark:
        apply_watermark(out, font_path)
    return DeliveredVideo(out, order)
