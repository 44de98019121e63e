"""Weight-free mask tracking for `mask_type=tracking` (docs/model-inputs.md §5.4).

VACE's `masktrack` prompts the SAM2 video predictor with the mask on one frame and propagates
it through the clip. Without weights, `FlowTracker` carries the mask from frame `start` to its
neighbours one step at a time with OpenCV's DIS optical flow:

    flow = DIS(frame_i → frame_{i∓1})              # where each pixel of frame i came from
    mask_i = remap(mask_{i∓1}, grid + flow) > 0.5   # backward warping, bilinear, then binarise

forward (start → last) and backward (start → first). The given mask is returned unchanged on
frame `start` (binarised: every pixel > 0 is object, as VACE's SAM2 mask prompt reads it).

Quality limits — it is a stand-in, not a segmenter:
- **Drift**: errors accumulate frame by frame; the mask slowly shrinks or leaks onto the
  background, more on long clips, fast motion, motion blur and textureless objects (on VACE's
  `test.mp4` the cat's mask lost ~25 % of its area over 80 frames).
- **Disocclusion trails**: where the background reappears, the flow points back into the
  object, so the mask leaves a smear behind a moving object.
- **No re-detection**: once (part of) the object is occluded or leaves the frame, that part is
  gone for good; newly appearing parts of the object are never added.
- Flow at the frame border and on large (> ~1/8 of the frame per step) motions is unreliable.
Follow it with `hull`/`bbox` expansion (docs/model-inputs.md §6), which hides much of the erosion.

Deterministic: DIS has no randomness and the same inputs give the same masks.

Channel order: VACE tracks with SAM2 on RGB frames; DIS works on gray, taken here as the luma
of the RGB frame (OpenCV RGB2GRAY, the right conversion for RGB input).
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
from PIL import Image

from vace_server.annotators.base import check_track_arguments

THRESHOLD = 0.5  # warped (bilinear) mask values above this are "object"


def _gray(frame: Image.Image, size: tuple[int, int]) -> np.ndarray:
    rgb = frame.convert("RGB")
    if rgb.size != size:
        rgb = rgb.resize(size, Image.Resampling.BILINEAR)
    return cv2.cvtColor(np.asarray(rgb), cv2.COLOR_RGB2GRAY)


def _binary(mask: Image.Image, size: tuple[int, int]) -> np.ndarray:
    gray = mask.convert("L")
    if gray.size != size:
        gray = gray.resize(size, Image.Resampling.NEAREST)
    return (np.asarray(gray) > 0).astype(np.float32)


class FlowTracker:
    """MaskTracker by DIS optical flow propagation (see the module docstring for its limits)."""

    name = "dis-flow-tracker"
    backend = "classical"

    def __init__(self, preset: int = cv2.DISOPTICAL_FLOW_PRESET_MEDIUM) -> None:
        self.preset = preset

    def track(
        self, frames: Sequence[Image.Image], mask: Image.Image, start: int
    ) -> list[Image.Image]:
        """Propagates `mask` (L, 255 = object) from `frames[start]` to every frame.

        Returns: one L mask per frame, values 0/255, each of the first frame's size (a mask
        or frame of another size is resized to it).
        Raises: ValueError for no frames or `start` out of range."""
        check_track_arguments(frames, start)
        size = frames[0].size
        width, height = size
        gray = [_gray(frame, size) for frame in frames]
        grid_x, grid_y = np.meshgrid(
            np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32)
        )
        dis = cv2.DISOpticalFlow.create(self.preset)
        masks: list[np.ndarray | None] = [None] * len(frames)
        masks[start] = _binary(mask, size)
        for step, stop in ((1, len(frames)), (-1, -1)):
            previous = masks[start]
            for i in range(start + step, stop, step):
                assert previous is not None
                if not previous.any():  # nothing left to carry: skip the flow computation
                    current = previous
                else:
                    # a fresh output each time: a passed-in buffer is read as the initial flow
                    flow = dis.calc(gray[i], gray[i - step], None)  # type: ignore[call-overload]
                    warped = cv2.remap(
                        previous,
                        grid_x + flow[..., 0],
                        grid_y + flow[..., 1],
                        cv2.INTER_LINEAR,
                        borderMode=cv2.BORDER_CONSTANT,
                        borderValue=0.0,
                    )
                    current = (warped > THRESHOLD).astype(np.float32)
                masks[i] = current
                previous = current
        return [Image.fromarray((m * 255).astype(np.uint8)) for m in masks if m is not None]
