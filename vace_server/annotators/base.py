"""The annotator seams. Each kind has one interface and up to two implementations:
model-backed (checkpoints from a configured folder) and classical (always available).

Frames are PIL RGB images; masks are PIL "L" images with 255 = edit / object, 0 = keep.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from PIL import Image


class FrameAnnotator(Protocol):
    """Turns frames into control renderings of the same size and count (depth, pose, scribble)."""

    name: str  # e.g. "depth-anything-v2", "canny-scribble"
    backend: str  # "model" or "classical"

    def annotate(self, frames: Sequence[Image.Image]) -> list[Image.Image]: ...


class MaskTracker(Protocol):
    """Propagates the mask given on frame `start` to every frame (forward and backward)."""

    name: str
    backend: str

    def track(
        self, frames: Sequence[Image.Image], mask: Image.Image, start: int
    ) -> list[Image.Image]: ...


def check_track_arguments(frames: Sequence[Image.Image], start: int) -> None:
    """What every MaskTracker requires. Raises ValueError for no frames or `start` out of range."""
    if not frames:
        raise ValueError("no frames to track the mask through")
    if not 0 <= start < len(frames):
        raise ValueError(f"start frame {start} outside 0..{len(frames) - 1}")


class SubjectSegmenter(Protocol):
    """Cuts the main subject of a reference image out onto white, cropped to it."""

    name: str
    backend: str

    def cut_out(self, image: Image.Image) -> Image.Image: ...


@dataclass(frozen=True)
class AnnotatorSet:
    """What the worker has loaded. A missing entry means "not configured": the function that
    needs it fails the task with an actionable message (`unavailable`) instead of
    substituting something else."""

    segmenter: SubjectSegmenter
    tracker: MaskTracker
    scribble: FrameAnnotator
    depth: FrameAnnotator | None = None
    pose_body: FrameAnnotator | None = None
    pose_body_face: FrameAnnotator | None = None
    notes: dict[str, str] = field(default_factory=dict)  # why an entry is missing

    def describe(self) -> dict[str, dict[str, str | None]]:
        """For /health: each control's implementation, or why it is unavailable."""
        entries: dict[str, object] = {
            "segmentation": self.segmenter,
            "tracking": self.tracker,
            "scribble": self.scribble,
            "depth": self.depth,
            "posebody": self.pose_body,
            "posebodyface": self.pose_body_face,
        }
        out: dict[str, dict[str, str | None]] = {}
        for key, ann in entries.items():
            if ann is None:
                out[key] = {"available": "false", "reason": self.notes.get(key)}
            else:
                out[key] = {
                    "available": "true",
                    "name": getattr(ann, "name", None),
                    "backend": getattr(ann, "backend", None),
                }
        return out
