"""How the create rules read one request's values: `RequestValues` (by key in `input` and
`parameters`, plus the URL rule), implemented by the create body (`api.validation`) and by
`vace-server generate`'s options (`oneshot.request`), and the numbers those rules read."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from vace_server.api.wire_fields import OUTPAINT_SIDES
from vace_server.api.wire_values import read_number
from vace_server.errors import field_invalid, field_required


@dataclass(frozen=True)
class NumberRange:
    """A `parameters.*` number: its default when absent and its closed range."""

    default: float
    low: float
    high: float


# Every number the validator reads, by its key in `parameters` (docs/contract.md §5).
NUMBER_FIELDS: Mapping[str, NumberRange] = {
    "strength": NumberRange(default=1.0, low=0.0, high=1.0),
    "expand_ratio": NumberRange(default=0.05, low=0.0, high=1.0),
    **{f"{side}_scale": NumberRange(default=1.0, low=1.0, high=2.0) for side in OUTPAINT_SIDES},
}


class RequestValues(ABC):
    """The values of one create request, by their key in `input` and `parameters` (None =
    absent), and the rule its media URLs follow; the readers below build on those three."""

    @abstractmethod
    def inp(self, key: str) -> Any: ...

    @abstractmethod
    def param(self, key: str) -> Any: ...

    @abstractmethod
    def check_url(self, value: Any, field: str) -> str:
        """`value` when it is an acceptable media URL for `field`; raises the field's error."""

    def number(self, key: str) -> float:
        """`parameters[key]` within its `NUMBER_FIELDS` range, or its default."""
        bounds = NUMBER_FIELDS[key]
        return read_number(
            self.param(key),
            f"parameters.{key}",
            default=bounds.default,
            low=bounds.low,
            high=bounds.high,
        )

    def url(self, key: str) -> str | None:
        value = self.inp(key)
        return None if value is None else self.check_url(value, f"input.{key}")

    def required_url(self, key: str) -> str:
        value = self.inp(key)
        if value is None:
            raise field_required(f"input.{key}")
        return self.check_url(value, f"input.{key}")

    def url_list(self, key: str, *, keep: int) -> list[str]:
        """An array of URLs, cut to its first `keep` entries before the entries are checked.
        Raises: the bad-value error when it is not an array, is empty, or a kept entry is
        not an acceptable URL."""
        value, field = self.inp(key), f"input.{key}"
        if not isinstance(value, list) or not value:
            raise field_invalid(field)
        return [self.check_url(item, field) for item in value[:keep]]
