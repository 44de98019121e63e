"""Waiting for something to happen, in tests: poll a condition until a deadline instead of
sleeping a fixed time and hoping the machine was fast enough. A loaded CI box only makes the
wait longer, never the test red; the deadline is a safety net against a hang, not a bound
the test asserts."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(
    check: Callable[[], T | None],
    timeout: float = 30.0,
    *,
    every: float = 0.02,
    what: str = "the condition",
) -> T:
    """Calls `check` until it returns something truthy and returns that value.

    Raises: AssertionError naming `what` once `timeout` seconds have gone by without it
    (the last check runs at or after the deadline, so a slow check still gets its chance)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(every)
