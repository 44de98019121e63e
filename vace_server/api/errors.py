"""One place that turns every exception into a DashScope error body.

ServiceErrors are rendered as they are; a database that cannot be reached becomes
`ServiceUnavailable` (503 with `Retry-After`); anything else is a 500 `InternalError`. Each
failure is logged once, as one record (the JSON log keeps its traceback inside the line), and
always answered with a JSON body, so the connection stays open for the next request.
"""

from __future__ import annotations

import logging
import math
import sqlite3
import uuid

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException as StarletteHTTPException

from vace_server.api.wire_names import wire_message
from vace_server.errors import (
    InternalError,
    InvalidParameter,
    MethodNotAllowed,
    NotFound,
    ServiceError,
    ServiceUnavailable,
)

log = logging.getLogger(__name__)

DATABASE_RETRY_AFTER_SECONDS = 5
# Failures of the database itself (down, unreachable, locked, connection lost, pool exhausted),
# as SQLAlchemy wraps them and as the drivers raise them when used directly.
DATABASE_ERRORS: tuple[type[Exception], ...] = (
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    sa_exc.DisconnectionError,
    sa_exc.TimeoutError,
    sqlite3.OperationalError,
)
try:  # the [postgres] extra; a SQLite-only install has no psycopg to fail
    import psycopg

    DATABASE_ERRORS += (psycopg.OperationalError, psycopg.InterfaceError)
except ImportError:
    pass


def is_database_failure(exc: BaseException) -> bool:
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, DATABASE_ERRORS)


def _describe(exc: BaseException) -> str:
    """The driver's own words, first line only (SQLAlchemy appends the statement)."""
    cause = exc.orig if isinstance(exc, sa_exc.DBAPIError) and exc.orig else exc
    text = str(cause).strip().splitlines()
    return f"{type(cause).__name__}: {text[0] if text else ''}"


def error_response(error: ServiceError, request: Request) -> JSONResponse:
    rid = getattr(request.state, "request_id", None) or str(uuid.uuid4())
    body = {"code": error.code, "message": wire_message(error.message), "request_id": rid}
    headers = {}
    if error.retry_after is not None:
        headers["Retry-After"] = str(max(1, math.ceil(error.retry_after)))
    if error.status in (408, 413):  # the rest of the body is never read: the connection is spent
        headers["Connection"] = "close"
    return JSONResponse(body, status_code=error.status, headers=headers)


def exception_response(exc: Exception, request: Request) -> JSONResponse:
    """The answer to an exception no route turned into a ServiceError, logged once here."""
    where = f"{request.method} {request.url.path}"
    if isinstance(exc, ServiceError):
        return error_response(exc, request)
    if is_database_failure(exc):
        log.error("database unavailable on %s (answered 503): %s", where, _describe(exc))
        unavailable = ServiceUnavailable(retry_after=DATABASE_RETRY_AFTER_SECONDS)
        return error_response(unavailable, request)
    log.error("unhandled error on %s", where, exc_info=exc)
    return error_response(InternalError(), request)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ServiceError)
    async def _service_error(request: Request, exc: ServiceError) -> JSONResponse:
        return error_response(exc, request)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        mapped: ServiceError
        if exc.status_code == 404:
            mapped = NotFound()
        elif exc.status_code == 405:
            mapped = MethodNotAllowed()
        else:
            mapped = ServiceError(str(exc.detail))
            mapped.status = exc.status_code
            mapped.code = "BadRequest" if exc.status_code < 500 else "InternalError"
        return error_response(mapped, request)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(InvalidParameter(), request)

    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        return exception_response(exc, request)

    for kind in DATABASE_ERRORS:
        app.add_exception_handler(kind, _unexpected)
    # Only reached by a fault in our own middleware: RequestContextMiddleware renders the rest.
    app.add_exception_handler(Exception, _unexpected)
