"""Typed readers for scalar wire values (contract §3, §5).

Each reader takes the raw JSON value (None meaning absent or JSON null) and the client-visible
field path, and either returns a typed value or raises the bad-value `InvalidParameter`.
JSON booleans are never accepted as numbers, nor strings as booleans or numbers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, TypeVar

from vace_server.errors import field_invalid

T = TypeVar("T")

# §5.6: the only accepted `size` values, written width*height.
SIZES: Mapping[str, tuple[int, int]] = {
    "1280*720": (1280, 720),
    "720*1280": (720, 1280),
    "960*960": (960, 960),
    "832*1088": (832, 1088),
    "1088*832": (1088, 832),
}
DEFAULT_SIZE = SIZES["1280*720"]


def read_bool(value: Any, field: str, *, default: bool) -> bool:
    if value is None:
        return default
    if not isinstance(value, bool):
        raise field_invalid(field)
    return value


def as_int(value: Any, field: str) -> int:
    """An integer; an integral JSON float such as `5.0` counts as one, `5.5` does not."""
    if isinstance(value, bool):
        raise field_invalid(field)
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise field_invalid(field)


def read_int(value: Any, field: str, *, low: int, high: int | None = None) -> int | None:
    """An optional integer in [low, high] (no upper bound when `high` is None)."""
    if value is None:
        return None
    number = as_int(value, field)
    if number < low or (high is not None and number > high):
        raise field_invalid(field)
    return number


def read_number(value: Any, field: str, *, default: float, low: float, high: float) -> float:
    """An optional finite number in [low, high], returned as float."""
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise field_invalid(field)
    number = float(value)
    if not math.isfinite(number) or not low <= number <= high:
        raise field_invalid(field)
    return number


def read_choice(value: Any, field: str, choices: Mapping[str, T]) -> T | None:
    """An optional string that must be one of `choices` (exact, case-sensitive)."""
    if value is None:
        return None
    if not isinstance(value, str) or value not in choices:
        raise field_invalid(field)
    return choices[value]


def read_size(value: Any, field: str) -> tuple[int, int]:
    """`size` as (width, height); absent means the 1280*720 default."""
    size = read_choice(value, field, SIZES)
    return DEFAULT_SIZE if size is None else size


def read_string(value: Any, field: str) -> str | None:
    """An optional string of any content."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise field_invalid(field)
    return value
