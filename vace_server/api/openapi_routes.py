"""What the OpenAPI document says about each public route: parameters, headers, the success
body and media type, and the error statuses the route really sends (docs/contract.md §2, §7,
§8.1, §10, §12, §13). Read by `openapi_document.py`; a route missing here fails the build
of the document (tests/api/test_openapi_document.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from vace_server.api.openapi_create import MEDIA_URL
from vace_server.api.routes_create import CALLBACK_HEADER
from vace_server.api.routes_tasks import (
    MAX_FILTER_CHARS,
    MAX_PAGE_NO,
    MAX_PAGE_SIZE,
    MAX_TASK_ID_CHARS,
)
from vace_server.api.routes_uploads import POLICY_ROUTE, RECEIVE_ROUTE
from vace_server.api.upload_policy import OSS_ACCESS_KEY_ID
from vace_server.storage.local import OUTPUT_ROUTE
from vace_server.tasks.status import TaskStatus

CREATE_ROUTE = "/api/v1/services/aigc/video-generation/video-synthesis"
MODELS_PLACEHOLDER = "__served_models__"  # replaced by the app's model names when rendered

# Per status: which codes it carries (the text of the response's description).
E400_BODY = (
    "InvalidParameter, BadRequest.EmptyModel, BadRequest.EmptyInput, BadRequest.IllegalInput"
)
E401 = "InvalidApiKey: no key, or an unknown one"
E403_ASYNC = "AccessDenied: no `X-DashScope-Async: enable` (synchronous calls are not served)"
E408 = "RequestTimeOut: the body stalled (VACE_REQUEST_BODY_TIMEOUT_SECONDS); connection closed"
E413 = "InvalidParameter: the body is over VACE_MAX_REQUEST_BYTES; connection closed"
E429 = "Throttling.RateQuota or Throttling.Concurrency (rate limits, off by default)"
E500 = "InternalError: a bug"
E503 = "ServiceUnavailable: the database cannot be reached (Retry-After: 5)"
E400_QUERY = "InvalidParameter naming the query parameter"


@dataclass(frozen=True)
class RouteDoc:
    operation_id: str
    summary: str
    tag: str
    ok: dict[str, Any]  # the 200 (or other 2xx) response object
    errors: dict[int, str]  # status -> the codes it carries
    auth: bool = True
    parameters: list[dict[str, Any]] = field(default_factory=list)
    body: dict[str, Any] | None = None
    ok_status: int = 200


def json_ok(schema_name: str, description: str) -> dict[str, Any]:
    ref = {"$ref": f"#/components/schemas/{schema_name}"}
    return {"description": description, "content": {"application/json": {"schema": ref}}}


def param(
    where: str, name: str, schema: dict[str, Any], description: str = "", *, required: bool = False
) -> dict[str, Any]:
    found: dict[str, Any] = {"name": name, "in": where, "required": required, "schema": schema}
    if description:
        found["description"] = description
    return found


def _enable(description: str) -> dict[str, Any]:
    # Compared case-insensitively by the server; `enable` is the documented spelling.
    return {"type": "string", "enum": ["enable"], "description": description}


TASK_ID = param(
    "path",
    "task_id",
    {"type": "string", "minLength": 1, "maxLength": MAX_TASK_ID_CHARS},
    "Any other id (unknown, expired, another account's) is answered as UNKNOWN.",
    required=True,
)
LIST_TIME = {"type": "string", "pattern": "^[0-9]{14}$", "description": "YYYYMMDDhhmmss"}
FILTER = {"type": "string", "maxLength": MAX_FILTER_CHARS}
MODEL_QUERY = {"type": "string", "enum": [MODELS_PLACEHOLDER]}

# The SDK sends it for `workspace=` on any call: accepted and ignored (docs/contract.md §2).
WORKSPACE = param("header", "X-DashScope-WorkSpace", {"type": "string"}, "Accepted and ignored")
CREATE_HEADERS = [
    param(
        "header",
        "X-DashScope-Async",
        _enable("Required: tasks only run asynchronously"),
        required=True,
    ),
    param(
        "header",
        "X-DashScope-OssResourceResolve",
        _enable("Needed when a media URL is oss://… (the upload flow)"),
    ),
    WORKSPACE,
    param(
        "header",
        CALLBACK_HEADER,
        MEDIA_URL | {"description": "This server's webhook: the task's query body when it ends"},
    ),
]

LIST_PARAMETERS = [
    param(
        "query", "page_no", {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_NO, "default": 1}
    ),
    param(
        "query",
        "page_size",
        {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE, "default": 10},
    ),
    param("query", "start_time", LIST_TIME, "With end_time, at most 24 h apart"),
    param("query", "end_time", LIST_TIME, "Default: now (or start_time + 24 h)"),
    param("query", "status", {"type": "string", "enum": list(TaskStatus.__members__)}),
    param("query", "task_id", FILTER),
    param("query", "model_name", FILTER),
    param("query", "api_key_id", FILTER),
    param("query", "region", {"type": "string"}, "Accepted and ignored"),
]

UPLOAD_FORM = {
    "multipart/form-data": {
        "schema": {
            "type": "object",
            "required": ["OSSAccessKeyId", "policy", "Signature", "key", "file"],
            "properties": {
                "OSSAccessKeyId": {"type": "string", "enum": [OSS_ACCESS_KEY_ID]},
                "policy": {"type": "string", "description": "getPolicy's data.policy"},
                "Signature": {"type": "string", "description": "getPolicy's data.signature"},
                "key": {"type": "string", "description": "<upload_dir>/<file name>"},
                "x-oss-object-acl": {"type": "string"},
                "x-oss-forbid-overwrite": {"type": "string"},
                "success_action_status": {"type": "string"},
                "x-oss-content-type": {"type": "string"},
                "file": {"type": "string", "format": "binary", "description": "the last part"},
            },
        },
        "encoding": {"file": {"contentType": "application/octet-stream"}},
    }
}

_TASK_ERRORS = {401: E401, 429: E429, 500: E500, 503: E503}
_POST_ERRORS = {408: E408, 413: E413}
CANCEL_400 = "UnsupportedOperation: not PENDING or RUNNING, unknown, expired, or another account's"

ROUTES: dict[tuple[str, str], RouteDoc] = {
    ("post", CREATE_ROUTE): RouteDoc(
        "create_task",
        "Create a task (asynchronous only)",
        "tasks",
        json_ok("CreateResponse", "The task is stored (PENDING)"),
        {400: E400_BODY, 403: E403_ASYNC, **_POST_ERRORS, **_TASK_ERRORS},
        parameters=CREATE_HEADERS,
        body={
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/CreateRequest"}}
            },
        },
    ),
    ("get", "/api/v1/tasks/{task_id}"): RouteDoc(
        "query_task",
        "Query one task",
        "tasks",
        json_ok("QueryResponse", "The task, or UNKNOWN"),
        dict(_TASK_ERRORS),
        parameters=[TASK_ID],
    ),
    ("post", "/api/v1/tasks/{task_id}/cancel"): RouteDoc(
        "cancel_task",
        "Cancel a PENDING or RUNNING task",
        "tasks",
        json_ok("CancelResponse", "Canceled (a running task stops within one step)"),
        {400: CANCEL_400, **_POST_ERRORS, **_TASK_ERRORS},
        parameters=[TASK_ID],
    ),
    ("get", "/api/v1/tasks"): RouteDoc(
        "list_tasks",
        "List the account's tasks (newest first, a 24 h window)",
        "tasks",
        json_ok("ListResponse", "One page"),
        {400: E400_QUERY, **_TASK_ERRORS},
        parameters=LIST_PARAMETERS,
    ),
    ("get", "/api/v1/tasks/"): RouteDoc(
        "list_tasks_slash",
        "List tasks (the same, as the upstream docs write the path)",
        "tasks",
        json_ok("ListResponse", "One page"),
        {400: E400_QUERY, **_TASK_ERRORS},
        parameters=LIST_PARAMETERS,
    ),
    ("get", POLICY_ROUTE): RouteDoc(
        "get_upload_policy",
        "Hand out an upload policy (getPolicy)",
        "uploads",
        json_ok("PolicyResponse", "A signed policy for one upload directory"),
        {400: "InvalidParameter (action, model), BadRequest.EmptyModel", **_TASK_ERRORS},
        parameters=[
            param("query", "action", {"type": "string", "enum": ["getPolicy"]}, required=True),
            param("query", "model", MODEL_QUERY, required=True),
        ],
    ),
    ("post", RECEIVE_ROUTE): RouteDoc(
        "receive_upload",
        "Receive one uploaded file (an OSS PostObject form; the policy is the credential)",
        "uploads",
        {"description": "Stored; an empty body, like OSS"},
        {
            400: "InvalidParameter (a missing field, a malformed form), EntityTooLarge (> 100 MB)",
            403: "AccessDenied: access key id, signature, expired policy, key outside upload_dir",
            409: "FileAlreadyExists: uploads never overwrite",
            500: E500,
            503: E503,
        },
        auth=False,
        body={"required": True, "content": UPLOAD_FORM},
    ),
    ("get", OUTPUT_ROUTE + "/{key}"): RouteDoc(
        "download_output",
        "Download a result (the signed link in output.video_url; local storage only)",
        "outputs",
        {
            "description": "The MP4",
            "content": {"video/mp4": {"schema": {"type": "string", "format": "binary"}}},
        },
        {
            403: "AccessDenied: the link expired or its signature does not match",
            404: "NotFound: no such result (or S3 storage, whose links point at the bucket)",
            500: E500,
        },
        auth=False,
        parameters=[
            param("path", "key", {"type": "string", "minLength": 1}, required=True),
            param("query", "expires", {"type": "string", "pattern": "^[0-9]+$"}, "epoch ms"),
            param("query", "signature", {"type": "string"}),
        ],
    ),
    ("get", "/health"): RouteDoc(
        "health",
        "Liveness (this process only; never the database)",
        "operations",
        json_ok("Health", "ok, or degraded with the workers' load error"),
        {500: E500},
        auth=False,
    ),
    ("get", "/ready"): RouteDoc(
        "ready",
        "Readiness: the database answers and a worker is alive",
        "operations",
        json_ok("Ready", "Ready"),
        {
            400: "InvalidParameter: `model` is not a served model (only with VACE_MODELS)",
            500: E500,
            503: "ServiceUnavailable: the database, or no worker alive or able to load its model",
        },
        auth=False,
        parameters=[
            param("query", "model", {"type": "string"}, "Only with VACE_MODELS: one model")
        ],
    ),
    ("get", "/metrics"): RouteDoc(
        "metrics",
        "Prometheus metrics",
        "operations",
        {
            "description": "The Prometheus text format",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        },
        {500: E500, 503: E503},
        auth=False,
    ),
}
