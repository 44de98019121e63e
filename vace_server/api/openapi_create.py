"""The create body in the OpenAPI document (docs/contract.md §3-§6), as JSON Schema built from
the validator's own tables, so the document follows the validator as it changes.

Documentation only: the route still parses the raw body with `validation.parse_create_request`
(the schema is never used to accept or refuse a request). One variant per function, told apart
by `input.function`; each names only the fields that function reads (§6), with the enums,
ranges and defaults the validator applies, and the upstream example of §5.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from vace_server.api import validation, wire_fields
from vace_server.api.request_values import NUMBER_FIELDS
from vace_server.api.wire_media import MAX_URL_CHARS
from vace_server.api.wire_values import INT32_MAX, SIZES
from vace_server.tasks.spec import VaceFunction

# Any http(s) URL with a host, or an upload's `oss://<key>` (§4); the rest of §4's checks
# (no whitespace, no Chinese characters, ...) are in the description.
MEDIA_URL: dict[str, Any] = {
    "type": "string",
    "minLength": 1,
    "maxLength": MAX_URL_CHARS,
    "pattern": r"^(https?://[^/?#\s]+|oss://[^/\s])\S*$",
    "description": "A public http(s) URL with a host, or oss://<key> from the upload flow "
    "(needs `X-DashScope-OssResourceResolve: enable`). No whitespace, control or Chinese "
    "characters; checked after download for format, size and resolution (docs/contract.md §4).",
}
DEFAULT_SIZE_NAME = "1280*720"


def _enum(values: Iterable[str], description: str = "", default: str | None = None) -> Any:
    schema: dict[str, Any] = {"type": "string", "enum": list(values)}
    if description:
        schema["description"] = description
    if default is not None:
        schema["default"] = default
    return schema


def _number(key: str, description: str) -> dict[str, Any]:
    bounds = NUMBER_FIELDS[key]
    return {
        "type": "number",
        "minimum": bounds.low,
        "maximum": bounds.high,
        "default": bounds.default,
        "description": description,
    }


def _urls(max_items: int, description: str) -> dict[str, Any]:
    # Longer lists are accepted: the entries past `max_items` are dropped unchecked (§5.1).
    return {"type": "array", "minItems": 1, "items": MEDIA_URL, "description": description}


def _object(properties: dict[str, Any], required: Iterable[str] = ()) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if list(required):
        schema["required"] = list(required)
    return schema


def _prompt(limit: int, what: str) -> dict[str, Any]:
    return {
        "type": "string",
        "description": f"{what}; longer than {limit} characters is cut to {limit}, never refused.",
    }


def _common_parameters(duration: bool) -> dict[str, Any]:
    common: dict[str, Any] = {
        "prompt_extend": {"type": "boolean", "default": validation.BOOL_DEFAULTS["prompt_extend"]},
        "watermark": {"type": "boolean", "default": validation.BOOL_DEFAULTS["watermark"]},
        "seed": {
            "type": "integer",
            "minimum": 0,
            "maximum": validation.SEED_MAX,
            "description": "Drawn at create when absent (and then reported in `usage.seed`).",
        },
    }
    if duration:
        fixed = validation.FIXED_DURATION
        common["duration"] = {"type": "integer", "enum": [fixed], "default": fixed}
    return common


def _size() -> dict[str, Any]:
    return _enum(SIZES, "width*height of the result (§5.6)", DEFAULT_SIZE_NAME)


def _controls(function: VaceFunction) -> dict[str, Any]:
    fields = wire_fields.FUNCTION_FIELDS[function]
    return _enum(fields.controls, f"Required: {fields.control_rule.value}.")


def _function_fields(function: VaceFunction) -> tuple[dict[str, Any], dict[str, Any]]:
    """(input properties, parameters properties) besides the common ones, per §5."""
    mask_frame = {"type": "integer", "minimum": 1, "maximum": INT32_MAX, "default": 1}
    scale = "1.0 = no expansion on that side"
    table: dict[VaceFunction, tuple[dict[str, Any], dict[str, Any]]] = {
        VaceFunction.IMAGE_REFERENCE: (
            {"ref_images_url": _urls(wire_fields.MAX_REFERENCES, "1-3 images; extras dropped")},
            {
                "obj_or_bg": {
                    "type": "array",
                    "items": _enum(validation.ROLES),
                    "description": "One per kept image, at most one `bg`; optional with one image.",
                },
                "size": _size(),
            },
        ),
        VaceFunction.VIDEO_REPAINTING: (
            {"video_url": MEDIA_URL, "ref_images_url": _urls(1, "only the first is used")},
            {
                "control_condition": _controls(function),
                "strength": _number("strength", "how closely the input's motion is followed"),
            },
        ),
        VaceFunction.VIDEO_EDIT: (
            {
                "video_url": MEDIA_URL,
                "mask_image_url": MEDIA_URL,
                "mask_video_url": MEDIA_URL,
                "mask_frame_id": mask_frame,
                "ref_images_url": _urls(1, "only the first is used"),
            },
            {
                "control_condition": {
                    "type": "string",
                    "enum": ["", *wire_fields.OTHER_CONTROLS],
                    "description": "Optional; empty string = none.",
                },
                "mask_type": _enum(validation.MASK_TYPES, default=validation.DEFAULT_MASK_TYPE),
                "expand_ratio": _number("expand_ratio", "how far a tracked mask grows"),
                "expand_mode": _enum(
                    validation.EXPAND_MODES, default=validation.DEFAULT_EXPAND_MODE
                ),
                "size": _size(),
            },
        ),
        VaceFunction.VIDEO_EXTENSION: (
            {
                **{key: MEDIA_URL for key in wire_fields.EXTENSION_FIELDS},
                "video_url": {**MEDIA_URL, "description": "optional motion reference"},
            },
            {"control_condition": _controls(function)},
        ),
        VaceFunction.VIDEO_OUTPAINTING: (
            {"video_url": MEDIA_URL},
            {f"{s}_scale": _number(f"{s}_scale", scale) for s in wire_fields.OUTPAINT_SIDES},
        ),
    }
    return table[function]


def _input_schema(function: VaceFunction) -> dict[str, Any]:
    fields = wire_fields.FUNCTION_FIELDS[function]
    own, _ = _function_fields(function)
    properties = {
        "function": {"type": "string", "enum": [function.value]},
        "prompt": {**_prompt(validation.MAX_PROMPT_CHARS, "Required, non-blank"), "pattern": r"\S"},
        "negative_prompt": _prompt(validation.MAX_NEGATIVE_PROMPT_CHARS, "Optional"),
        **own,
    }
    schema = _object(properties, ("function", "prompt", *fields.required))
    if fields.one_of:  # video_edit: a mask (§5.3); video_extension: a frame or clip (§5.4)
        schema["anyOf"] = [{"required": [name]} for name in fields.one_of]
    return schema


def _parameters_schema(function: VaceFunction) -> dict[str, Any]:
    fields = wire_fields.FUNCTION_FIELDS[function]
    _, own = _function_fields(function)
    required = (
        ["control_condition"] if fields.control_rule is wire_fields.ControlRule.ALWAYS else []
    )
    return _object({**own, **_common_parameters("duration" in fields.parameters)}, required)


def variant_name(function: VaceFunction) -> str:
    return "Create_" + function.value


def create_components(models: list[str]) -> dict[str, Any]:
    """components/schemas entries: one create body per function, and `CreateRequest`, their
    union told apart by `input.function`."""
    schemas: dict[str, Any] = {}
    for function in VaceFunction:
        body = _object(
            {
                "model": _enum(models, "Either name of the served model (§1)."),
                "input": _input_schema(function),
                "parameters": _parameters_schema(function),
            },
            ("model", "input"),
        )
        if function is VaceFunction.VIDEO_REPAINTING:
            body["required"] = ["model", "input", "parameters"]  # control_condition lives there
        body["title"] = function.value
        schemas[variant_name(function)] = body
    schemas["CreateRequest"] = {
        "description": "One variant per `input.function` (docs/contract.md §5). Keys a function "
        "does not read are ignored; the 1.x SDK's media fields in `parameters` are read too "
        "(§3).",
        "oneOf": [{"$ref": f"#/components/schemas/{variant_name(f)}"} for f in VaceFunction],
    }
    return schemas
