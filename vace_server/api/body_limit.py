"""Request body cap (`VACE_MAX_REQUEST_BYTES`), as an ASGI layer in front of every route.

A declared `Content-Length` over the cap is refused before a byte of the body is read; a body
without one (chunked) is counted as it streams in, and reading stops at the cap. Either way
the answer is 413 `InvalidParameter` naming the limit, with `Connection: close`.
Paths in `exempt` enforce their own, larger cap (the upload receiver: the policy's size).
"""

from __future__ import annotations

import logging
from collections.abc import Collection

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vace_server.api.errors import error_response
from vace_server.errors import RequestTooLarge

log = logging.getLogger(__name__)


def declared_length(scope: Scope) -> int | None:
    """The request's Content-Length, or None when it sends none (uvicorn has checked it)."""
    for name, value in scope["headers"]:
        if name == b"content-length" and value.strip().isdigit():
            return int(value)
    return None


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, *, max_bytes: int, exempt: Collection[str] = ()) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.exempt = frozenset(exempt)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.exempt:
            await self.app(scope, receive, send)
            return
        declared = declared_length(scope)
        if declared is not None and declared > self.max_bytes:
            log.info("refused a %d-byte request body (limit %d)", declared, self.max_bytes)
            response = error_response(RequestTooLarge(self.max_bytes), Request(scope))
            await response(scope, receive, send)
            return
        await self.app(scope, self._counting(receive), send)

    def _counting(self, receive: Receive) -> Receive:
        """`receive` that raises RequestTooLarge once the body passes the cap (a ServiceError:
        the route's error handler answers it)."""
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    log.info("stopped reading a request body at %d bytes (limit)", seen)
                    raise RequestTooLarge(self.max_bytes)
            return message

        return counted
