"""Time as the store, storage and API see it: integer milliseconds since the epoch.

A leaf module: every layer that stamps or compares times takes a `Clock`, so tests can pass a
fake one (tests/support/clock.py) instead of sleeping."""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["Clock", "wall_clock_ms"]

Clock = Callable[[], int]
"""Returns the current time in milliseconds since the epoch."""


def wall_clock_ms() -> int:
    """The system's wall clock, in milliseconds since the epoch."""
    return int(time.time() * 1000)
