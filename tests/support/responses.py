"""The response type the test helpers accept. Starlette's TestClient is built on `httpx2`
when that is installed (it is here) and on `httpx` otherwise, while live-server tests use
`httpx`: the helpers that check a response take either, as this protocol."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol


class HttpResponse(Protocol):
    @property
    def status_code(self) -> int: ...

    @property
    def headers(self) -> Mapping[str, str]: ...

    @property
    def text(self) -> str: ...

    @property
    def content(self) -> bytes: ...

    def json(self, **kwargs: Any) -> Any: ...
