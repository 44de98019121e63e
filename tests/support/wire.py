"""Messages as clients see them, for tests of the layers below `api/` (whose messages name
fields by `InputField` mention; the API writes the wire names in)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TypeVar

import pytest

from vace_server.api.wire_names import wire_message
from vace_server.errors import ServiceError

E = TypeVar("E", bound=ServiceError)

__all__ = ["raises_wire", "wire_message"]


@contextmanager
def raises_wire(kind: type[E], *, match: str) -> Iterator[pytest.ExceptionInfo[E]]:
    """`pytest.raises(kind, match=...)`, `match` searched in the message as clients see it."""
    with pytest.raises(kind) as info:
        yield info
    message = wire_message(info.value.message)
    assert re.search(match, message), f"{match!r} not found in {message!r}"
