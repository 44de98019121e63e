"""Deterministic stand-ins for the annotator seams, for tests of the function modules."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from PIL import Image, ImageOps

from vace_server.annotators.base import AnnotatorSet


class FakeSegmenter:
    name = "fake-segmenter"
    backend = "classical"

    def __init__(self, cut: Callable[[Image.Image], Image.Image] | None = None) -> None:
        self._cut = cut or (lambda image: image)

    def cut_out(self, image: Image.Image) -> Image.Image:
        return self._cut(image)


class FixedTracker:
    """`mask_type=tracking` stand-in: the same mask on every frame."""

    name = "fixed-tracker"
    backend = "classical"

    def track(
        self, frames: Sequence[Image.Image], mask: Image.Image, start: int
    ) -> list[Image.Image]:
        return [mask.copy() for _ in frames]


class InvertAnnotator:
    """A control rendering that is easy to recognise in pixel tests: the inverted frame."""

    backend = "classical"

    def __init__(self, name: str) -> None:
        self.name = name

    def annotate(self, frames: Sequence[Image.Image]) -> list[Image.Image]:
        return [ImageOps.invert(f.convert("RGB")) for f in frames]


def fake_annotators(
    *, cut: Callable[[Image.Image], Image.Image] | None = None, with_models: bool = True
) -> AnnotatorSet:
    """All controls present (with_models) or only the always-available classical ones."""
    model = InvertAnnotator
    return AnnotatorSet(
        segmenter=FakeSegmenter(cut),
        tracker=FixedTracker(),
        scribble=InvertAnnotator("fake-scribble"),
        depth=model("fake-depth") if with_models else None,
        pose_body=model("fake-posebody") if with_models else None,
        pose_body_face=model("fake-posebodyface") if with_models else None,
        notes={} if with_models else {"depth": "no depth checkpoint configured"},
    )
