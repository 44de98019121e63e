"""Errors raised while loading model-backed annotators."""

from __future__ import annotations


class AnnotatorLoadError(RuntimeError):
    """A configured annotator could not be loaded: its checkpoint folder is missing, incomplete
    or holds something else. The message names the folder and the content expected there, so the
    registry can show it verbatim (e.g. in /health) and fall back to "unavailable"."""
