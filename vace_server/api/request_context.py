"""The outermost ASGI layer: every HTTP request gets its id (in `request.state.request_id` and
in the log context for the whole request, error handling included), and no exception escapes
to uvicorn, which would log it as a plain-text traceback and drop the kept-alive connection.

Each response's status is handed to `on_response` (the metrics' HTTP counter), error answers
rendered here included.

A client that goes away before its request body is complete is not an error: one INFO line.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable

from starlette.requests import ClientDisconnect, Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vace_server.api.errors import exception_response
from vace_server.logging_setup import request_id_var

log = logging.getLogger(__name__)


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, on_response: Callable[[int], None] | None = None) -> None:
        self.app = app
        self.on_response = on_response

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = str(uuid.uuid4())
        scope.setdefault("state", {})["request_id"] = rid
        token = request_id_var.set(rid)
        started = False

        async def tracked_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                if self.on_response is not None:
                    self.on_response(int(message["status"]))
            await send(message)

        try:
            await self.app(scope, receive, tracked_send)
        except ClientDisconnect:
            log.info(
                "client disconnected before its request was complete: %s %s",
                scope["method"],
                scope["path"],
            )
        except Exception as exc:
            await self._answer(exc, scope, receive, tracked_send, started=started)
        finally:
            request_id_var.reset(token)

    @staticmethod
    async def _answer(
        exc: Exception, scope: Scope, receive: Receive, send: Send, *, started: bool
    ) -> None:
        request = Request(scope)
        if started:  # too late for an error body: uvicorn ends the cut-short response
            log.error(
                "error after the response started on %s %s",
                request.method,
                request.url.path,
                exc_info=exc,
            )
            return
        await exception_response(exc, request)(scope, receive, send)
