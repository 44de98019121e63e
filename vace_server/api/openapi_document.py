"""`/openapi.json`: the wire contract (docs/contract.md) as an OpenAPI 3.1 document.

FastAPI's own generator only sees `Request` parameters (every route parses its input itself, so
that the DashScope errors stay literal), and would advertise a 422 body the server never sends.
So the document is assembled here: the list of operations comes from the app's routes (a route
without an entry in `openapi_routes.ROUTES` is an error), everything else from the tables in
`openapi_routes`, `openapi_create` and `openapi_models`. Nothing here is used to parse a
request: the document describes the routes, it does not drive them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from vace_server import __version__
from vace_server.api.openapi_create import create_components
from vace_server.api.openapi_examples import CREATE_EXAMPLES
from vace_server.api.openapi_models import model_components
from vace_server.api.openapi_routes import (
    CREATE_ROUTE,
    MODELS_PLACEHOLDER,
    ROUTES,
    WORKSPACE,
    RouteDoc,
)

SECURITY_SCHEME = "ApiKey"
ERROR_REF = {"$ref": "#/components/schemas/ErrorBody"}
RETRY_AFTER = {"description": "Seconds to wait before retrying", "schema": {"type": "integer"}}
CONNECTION_CLOSE = {
    "description": "close: the rest of the body is never read",
    "schema": {"type": "string", "enum": ["close"]},
}
DESCRIPTION = (
    "A self-hosted, DashScope-compatible Wan VACE API (docs/contract.md). Point a DashScope "
    "client at `http(s)://<host>:<port>/api/v1` and use this server's API key. Every error is "
    '`{"code", "message", "request_id"}` with the status listed per operation; clients match '
    "on the literal `code` and the start of `message`."
)


class UndocumentedRoute(RuntimeError):
    """A route of the app has no entry in openapi_routes.ROUTES."""


def _error_response(status: int, codes: str) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": codes,
        "content": {"application/json": {"schema": ERROR_REF}},
    }
    if status in (429, 503):
        response["headers"] = {"Retry-After": RETRY_AFTER}
    elif status in (408, 413):
        response["headers"] = {"Connection": CONNECTION_CLOSE}
    return response


def _with_models(value: Any, models: list[str]) -> Any:
    """A copy of `value` with the served-models placeholder enum replaced by `models`."""
    if isinstance(value, dict):
        if value.get("enum") == [MODELS_PLACEHOLDER]:
            return {**value, "enum": list(models)}
        return {k: _with_models(v, models) for k, v in value.items()}
    if isinstance(value, list):
        return [_with_models(v, models) for v in value]
    return value


def _operation(doc: RouteDoc, models: list[str]) -> dict[str, Any]:
    responses = {str(doc.ok_status): doc.ok}
    responses |= {str(s): _error_response(s, codes) for s, codes in sorted(doc.errors.items())}
    parameters = list(doc.parameters)
    if doc.auth and WORKSPACE not in parameters:  # every keyed call may carry it
        parameters.append(WORKSPACE)
    op: dict[str, Any] = {
        "operationId": doc.operation_id,
        "summary": doc.summary,
        "tags": [doc.tag],
        "parameters": parameters,
        "responses": responses,
        # An empty list: this operation needs no key (the global default asks for one).
        "security": [{SECURITY_SCHEME: []}] if doc.auth else [],
    }
    if doc.body is not None:
        op["requestBody"] = doc.body
    # _with_models rebuilds every dict and list: the document shares nothing with the tables
    return _with_models(op, models)


def routed_operations(app: FastAPI) -> list[tuple[str, str]]:
    """(method, path) of every route FastAPI would document, as the document writes them."""
    generated = get_openapi(title=app.title, version=__version__, routes=app.routes)
    return [(m, p) for p, item in generated.get("paths", {}).items() for m in item]


def build_document(app: FastAPI, models: list[str]) -> dict[str, Any]:
    """The document for `app`; `models`: the model names it accepts (VACE_MODELS or both of
    the default model's names). Raises: UndocumentedRoute."""
    paths: dict[str, dict[str, Any]] = {}
    for method, path in routed_operations(app):
        doc = ROUTES.get((method, path))
        if doc is None:
            raise UndocumentedRoute(f"{method.upper()} {path} has no entry in openapi_routes")
        paths.setdefault(path, {})[method] = _operation(doc, models)
    create = paths.get(CREATE_ROUTE, {}).get("post")
    if create is not None:
        create["requestBody"]["content"]["application/json"]["examples"] = CREATE_EXAMPLES
    return {
        "openapi": "3.1.0",
        "info": {"title": app.title, "version": __version__, "description": DESCRIPTION},
        "paths": paths,
        "components": {
            "schemas": {**model_components(), **create_components(models)},
            "securitySchemes": {
                SECURITY_SCHEME: {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An API key of VACE_API_KEYS (or data/api_key). A bare key "
                    "without `Bearer ` is accepted too.",
                }
            },
        },
        "security": [{SECURITY_SCHEME: []}],
    }


def install_openapi(app: FastAPI, models: list[str]) -> None:
    """Serves `build_document` at `app.openapi_url`, built once on first use."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build_document(app, models)
        return app.openapi_schema

    setter: Callable[[], dict[str, Any]] = openapi
    app.openapi = setter  # type: ignore[method-assign]
