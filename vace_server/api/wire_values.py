"""Typed readers for scalar wire values (docs/contract.md §3, §5).

Each reader takes the raw JSON value (None meaning absent or JSON null) and the client-visible
field path, and either returns a typed value or raises the bad-value `InvalidParameter`.
JSON booleans are never accepted as numbers, nor strings as booleans or numbers.

Every value that enters through any route passes one of three gates here, so a whole class of
hostile values is refused in one place (a 400, never a 500 further down):
- text (`check_text`): no NUL and no lone UTF-16 surrogate (JSON allows `"\\ud800"`, but such a
  string cannot be encoded as UTF-8, so neither SQLite nor PostgreSQL can store it; PostgreSQL
  refuses NUL too);
- integers (`as_int`, `read_int`): within a signed 32-bit range unless a route says otherwise;
  decimal strings from a query or path (`parse_decimal`): ASCII digits only, bounded length;
- numbers (`read_number`): finite, and an integer too large for a float is refused, not
  converted.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any, TypeVar

from vace_server.errors import field_invalid

T = TypeVar("T")

# docs/contract.md §5.6: the only accepted `size` values, written width*height.
SIZES: Mapping[str, tuple[int, int]] = {
    "1280*720": (1280, 720),
    "720*1280": (720, 1280),
    "960*960": (960, 960),
    "832*1088": (832, 1088),
    "1088*832": (1088, 832),
}
DEFAULT_SIZE = SIZES["1280*720"]

INT32_MAX = 2_147_483_647
MAX_DECIMAL_DIGITS = 19  # longer strings are refused before int(); every bound is < 10**19
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")  # NUL, lone surrogates


def is_clean_text(value: str) -> bool:
    """True when `value` holds no NUL and no lone surrogate (so any database can store it)."""
    return _UNSTORABLE.search(value) is None


def check_text(value: str, field: str) -> str:
    """Returns `value` when it is storable text (see `is_clean_text`). Raises: the bad-value
    InvalidParameter naming `field`."""
    if not is_clean_text(value):
        raise field_invalid(field)
    return value


def parse_decimal(raw: str, *, max_digits: int = MAX_DECIMAL_DIGITS) -> int | None:
    """A non-negative integer written in plain ASCII digits, else None.

    `int()` alone would also take signs, spaces, underscores and non-ASCII digits (`"１"`),
    and any length; none of those is a number on the wire."""
    if not raw or len(raw) > max_digits or not (raw.isascii() and raw.isdigit()):
        return None
    return int(raw)


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


def read_int(value: Any, field: str, *, low: int, high: int = INT32_MAX) -> int | None:
    """An optional integer in [low, high]."""
    if value is None:
        return None
    number = as_int(value, field)
    if not low <= number <= high:
        raise field_invalid(field)
    return number


def read_number(value: Any, field: str, *, default: float, low: float, high: float) -> float:
    """An optional finite number in [low, high], returned as float."""
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise field_invalid(field)
    try:
        number = float(value)
    except OverflowError:  # an integer literal of hundreds of digits
        raise field_invalid(field) from None
    if not math.isfinite(number) or not low <= number <= high:
        raise field_invalid(field)
    return number


def read_choice(value: Any, field: str, choices: Mapping[str, T]) -> T | None:
    """An optional string that must be one of `choices` (exact, case-sensitive)."""
    if value is None:
        return None
    if not isinstance(value, str) or value not in choices:
        raise field_invalid(field, choices)
    return choices[value]


def read_size(value: Any, field: str) -> tuple[int, int]:
    """`size` as (width, height); absent means the 1280*720 default."""
    size = read_choice(value, field, SIZES)
    return DEFAULT_SIZE if size is None else size


def read_string(value: Any, field: str, *, max_chars: int | None = None) -> str | None:
    """An optional string of storable text (`check_text`), cut to its first `max_chars`
    characters when a limit is given (the whole string is checked before the cut)."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise field_invalid(field)
    check_text(value, field)
    return value if max_chars is None else value[:max_chars]
