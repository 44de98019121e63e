"""Request body bounds, as an ASGI layer in front of every route.

Size (`VACE_MAX_REQUEST_BYTES`): a declared `Content-Length` over the cap is refused before a
byte of the body is read; a body without one (chunked) is counted as it streams in, and
reading stops at the cap. The answer is 413 `InvalidParameter` naming the limit. Paths in
`exempt` enforce their own, larger cap (the upload receiver: the policy's size).

Time (`VACE_REQUEST_BODY_TIMEOUT_SECONDS`, every path): a body that stalls that long between
two pieces is answered 408 `RequestTimeOut`, so a slow client cannot hold a connection open
forever. Both answers carry `Connection: close`.
"""

from __future__ import annotations

import logging
from collections.abc import Collection

import anyio
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vace_server.api.errors import error_response
from vace_server.errors import RequestTimeout, RequestTooLarge

log = logging.getLogger(__name__)


def declared_length(scope: Scope) -> int | None:
    """The request's Content-Length, or None when it sends none (uvicorn has checked it)."""
    for name, value in scope["headers"]:
        if name == b"content-length" and value.strip().isdigit():
            return int(value)
    return None


class BodyLimitMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        max_bytes: int,
        idle_seconds: float,
        exempt: Collection[str] = (),
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.idle_seconds = idle_seconds
        self.exempt = frozenset(exempt)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cap = None if scope["path"] in self.exempt else self.max_bytes
        declared = declared_length(scope)
        if cap is not None and declared is not None and declared > cap:
            log.info("refused a %d-byte request body (limit %d)", declared, cap)
            response = error_response(RequestTooLarge(cap), Request(scope))
            await response(scope, receive, send)
            return
        await self.app(scope, self._guarded(receive, cap), send)

    def _guarded(self, receive: Receive, cap: int | None) -> Receive:
        """`receive` that raises RequestTooLarge once the body passes `cap` and RequestTimeout
        when a piece of it is awaited too long (ServiceErrors: the route's error handler
        answers them). Once the body is complete, waiting (for a disconnect) is unbounded."""
        seen = 0
        complete = False

        async def guarded() -> Message:
            nonlocal seen, complete
            if complete:
                return await receive()
            try:
                with anyio.fail_after(self.idle_seconds):
                    message = await receive()
            except TimeoutError:
                log.info("request body stalled for %gs after %d bytes", self.idle_seconds, seen)
                raise RequestTimeout(self.idle_seconds) from None
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                complete = not message.get("more_body", False)
                if cap is not None and seen > cap:
                    log.info("stopped reading a request body at %d bytes (limit)", seen)
                    raise RequestTooLarge(cap)
            return message

        return guarded
