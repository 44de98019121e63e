"""An OpenAPI 3.0 document of the wire API, written from the validator's own tables.

Nothing here repeats a value by hand: functions, enums, ranges, limits and route paths come
from `vace_server.api.validation`, `request_values`, `wire_fields`, `wire_names`,
`wire_values`, `routes_tasks`, `routes_uploads`, `upload_policy` and `storage.local`, so the
fuzzer follows the validator as it changes. Only
the *shape* (which function reads which field) is written out, as docs/contract.md §5 gives it.
Positive examples are well-typed requests shaped to get past the early checks and reach the
code behind them (the database, the signature comparison); a few constraints are left open on
purpose for that (any-text signature, unbounded `page_no`). Schemathesis derives the negative
ones by breaking the schema.
"""

from __future__ import annotations

from typing import Any

from vace_server.api import routes_tasks, validation, wire_fields, wire_names
from vace_server.api.request_values import NUMBER_FIELDS
from vace_server.api.routes_create import CALLBACK_HEADER
from vace_server.api.routes_uploads import POLICY_ROUTE, RECEIVE_ROUTE
from vace_server.api.upload_policy import OSS_ACCESS_KEY_ID, UPLOAD_DIR_ROOT
from vace_server.api.wire_values import INT32_MAX, SIZES
from vace_server.clock import wall_clock_ms
from vace_server.storage.local import OUTPUT_ROUTE
from vace_server.tasks.spec import VaceFunction
from vace_server.tasks.status import TaskStatus

DAY_MS = 86_400_000
CREATE_ROUTE = "/api/v1/services/aigc/video-generation/video-synthesis"
# Media URLs that pass the syntax check and could never be fetched (the port is closed and no
# worker runs during fuzzing).
URL = {"type": "string", "pattern": r"^http://127\.0\.0\.1:9/[a-z0-9]{1,12}\.(png|mp4)$"}
_YEAR = "(19[7-9][0-9]|[2-9][0-9]{3})"  # routes_tasks.LIST_YEARS starts at 1970
LIST_TIME = {
    "type": "string",
    "pattern": f"^{_YEAR}(0[1-9]|1[0-2])(0[1-9]|1[0-9]|2[0-8])"
    r"([01][0-9]|2[0-3])[0-5][0-9][0-5][0-9]$",
}


def enum(values: Any) -> dict[str, Any]:
    return {"type": "string", "enum": sorted(values)}


def number(field: str) -> dict[str, Any]:
    bounds = NUMBER_FIELDS[field]
    return {"type": "number", "minimum": bounds.low, "maximum": bounds.high}


def url_list(max_items: int) -> dict[str, Any]:
    return {"type": "array", "items": URL, "minItems": 1, "maxItems": max_items}


def obj(properties: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = list(required)
    return schema


COMMON_PARAMETERS = {
    "seed": {"type": "integer", "minimum": 0, "maximum": validation.SEED_MAX},
    "duration": {"type": "integer", "enum": [validation.FIXED_DURATION]},
    "prompt_extend": {"type": "boolean"},
    "watermark": {"type": "boolean"},
}


def function_inputs() -> dict[VaceFunction, tuple[dict[str, Any], dict[str, Any]]]:
    """(input schema, parameters schema) per function, with the fields §5 gives each."""
    size = enum(SIZES)
    mask_frame = {"type": "integer", "minimum": 1, "maximum": INT32_MAX}
    return {
        VaceFunction.IMAGE_REFERENCE: (
            obj({"ref_images_url": url_list(wire_fields.MAX_REFERENCES)}, ("ref_images_url",)),
            obj({"obj_or_bg": {"type": "array", "items": enum(validation.ROLES)}, "size": size}),
        ),
        VaceFunction.VIDEO_REPAINTING: (
            obj({"video_url": URL, "ref_images_url": url_list(1)}, ("video_url",)),
            obj(
                {
                    "control_condition": enum(wire_fields.REPAINTING_CONTROLS),
                    "strength": number("strength"),
                },
                ("control_condition",),
            ),
        ),
        VaceFunction.VIDEO_EDIT: (
            obj(
                {
                    "video_url": URL,
                    "mask_image_url": URL,
                    "mask_video_url": URL,
                    "ref_images_url": url_list(1),
                    "mask_frame_id": mask_frame,
                },
                ("video_url", "mask_image_url"),
            ),
            obj(
                {
                    "control_condition": enum(wire_fields.OTHER_CONTROLS),
                    "mask_type": enum(validation.MASK_TYPES),
                    "expand_ratio": number("expand_ratio"),
                    "expand_mode": enum(validation.EXPAND_MODES),
                    "size": size,
                }
            ),
        ),
        VaceFunction.VIDEO_EXTENSION: (
            obj({key: URL for key in wire_fields.EXTENSION_FIELDS}, ("first_clip_url",)),
            obj({}),
        ),
        VaceFunction.VIDEO_OUTPAINTING: (
            obj({"video_url": URL}, ("video_url",)),
            obj({f"{s}_scale": number(f"{s}_scale") for s in wire_fields.OUTPAINT_SIDES}),
        ),
    }


def create_body() -> dict[str, Any]:
    variants = []
    for function, (inputs, parameters) in function_inputs().items():
        text = {"type": "string", "minLength": 1, "maxLength": validation.MAX_PROMPT_CHARS}
        inputs["properties"] |= {
            "function": {"type": "string", "enum": [function.value]},
            "prompt": {**text, "pattern": r"\S"},
            "negative_prompt": {**text, "maxLength": validation.MAX_NEGATIVE_PROMPT_CHARS},
        }
        inputs["required"] = ["function", "prompt", *inputs.get("required", [])]
        parameters["properties"] |= COMMON_PARAMETERS
        variants.append(
            obj(
                {"model": enum(wire_names.MODEL_NAMES), "input": inputs, "parameters": parameters},
                ("model", "input"),
            )
        )
    return {"oneOf": variants}


def header(name: str, schema: dict[str, Any], *, required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": "header", "required": required, "schema": schema}


def query(name: str, schema: dict[str, Any], *, required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": required, "schema": schema}


def path(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": schema}


def operation(
    parameters: list[dict[str, Any]], body: dict[str, Any] | None = None
) -> dict[str, Any]:
    op: dict[str, Any] = {"parameters": parameters, "responses": {"200": {"description": "ok"}}}
    if body is not None:
        op["requestBody"] = {"required": True, "content": body}
    return op


def list_parameters() -> list[dict[str, Any]]:
    text = {"type": "string", "maxLength": routes_tasks.MAX_FILTER_CHARS}
    return [
        # No upper bound on page_no: positive cases then reach the database with huge pages.
        query("page_no", {"type": "integer", "minimum": 1}),
        query(
            "page_size", {"type": "integer", "minimum": 1, "maximum": routes_tasks.MAX_PAGE_SIZE}
        ),
        # Only one end of the range: two independent times are over 24 h apart almost always,
        # and the request would stop there instead of reaching the database.
        query("start_time", LIST_TIME),
        query("status", enum(TaskStatus.__members__)),
        query("task_id", text),
        query("model_name", text),
        query("api_key_id", text),
    ]


def upload_form() -> dict[str, Any]:
    fields = {
        "OSSAccessKeyId": {"type": "string", "enum": [OSS_ACCESS_KEY_ID]},
        "policy": {"type": "string", "pattern": "^[A-Za-z0-9+/]{4,64}={0,2}$"},
        "Signature": {"type": "string", "pattern": "^[A-Za-z0-9+/]{43}=$"},
        "key": {
            "type": "string",
            "pattern": f"^{UPLOAD_DIR_ROOT}/[a-z0-9]{{1,8}}/[a-z0-9]{{1,8}}$",
        },
        "file": {"type": "string", "format": "binary"},
    }
    return {"multipart/form-data": {"schema": obj(fields, tuple(fields))}}


def build_document(now_ms: int | None = None) -> dict[str, Any]:
    """The document; output-link expiries start a day after `now_ms` (default: now), so that
    fuzzed signatures reach the comparison instead of stopping at the expiry check."""
    not_expired = (wall_clock_ms() if now_ms is None else now_ms) + DAY_MS
    task_id = path("task_id", {"type": "string", "minLength": 1, "maxLength": 64})
    # Any text as the signature (ours are 64 hex digits): with an unexpired `expires`, every
    # positive case reaches the signature comparison.
    signature = {"type": "string", "maxLength": 256}
    return {
        "openapi": "3.0.3",
        "info": {"title": "vace-server (from the validator's tables)", "version": "fuzz"},
        "paths": {
            CREATE_ROUTE: {
                "post": operation(
                    [
                        # `X-DashScope-Async: enable` is always sent by the fuzzer, so negative
                        # cases break the body, not that header (tests/hostile covers it).
                        header("X-DashScope-OssResourceResolve", enum(["enable"])),
                        header(CALLBACK_HEADER, URL),
                    ],
                    {"application/json": {"schema": create_body()}},
                )
            },
            "/api/v1/tasks": {"get": operation(list_parameters())},
            "/api/v1/tasks/{task_id}": {"get": operation([task_id])},
            "/api/v1/tasks/{task_id}/cancel": {"post": operation([task_id])},
            OUTPUT_ROUTE + "/{key}": {
                "get": operation(
                    [
                        path("key", {"type": "string", "minLength": 1}),
                        query(
                            "expires",
                            {"type": "integer", "minimum": not_expired, "maximum": 10**18},
                            required=True,
                        ),
                        query("signature", signature, required=True),
                    ]
                )
            },
            POLICY_ROUTE: {
                "get": operation(
                    [
                        query("action", enum(["getPolicy"]), required=True),
                        query("model", enum(wire_names.MODEL_NAMES), required=True),
                    ]
                )
            },
            RECEIVE_ROUTE: {"post": operation([], upload_form())},
            "/health": {"get": operation([])},
            # `/ready` is left out: without a worker it answers 503 by design (readiness).
        },
    }
