"""Synchronous validation of the create request: DashScope wire body -> `TaskSpec`.

Wire names (`input.*`, `parameters.*`) stop here; everything below `api/` sees only the
`TaskSpec`. Checks run in this order, and the first failure is raised (docs/contract.md §2, §3):
JSON body, `model`, `input`, `parameters`, `input.function`, `input.prompt`,
`input.negative_prompt`, the chosen function's own fields (§5, inputs before parameters),
then the common generation parameters. Fields that do not apply to the function are neither
read nor validated (§6); unknown keys are ignored.

The rules read a request's values through `RequestValues`: the create body's `input` and
`parameters` objects here, `vace-server generate`'s options in `oneshot.request` (which
builds its TaskSpec with `parse_request_values`, so the CLI accepts and refuses exactly what
the API does).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NoReturn

from vace_server.api.request_values import RequestValues
from vace_server.api.wire_fields import (
    EXTENSION_FIELDS,
    FUNCTION_FIELDS,
    MAX_REFERENCES,
    MAX_SCENE_REFERENCES,
    OUTPAINT_SIDES,
    ControlRule,
)
from vace_server.api.wire_media import check_url
from vace_server.api.wire_names import DEFAULT_SERVED, ServedNames
from vace_server.api.wire_values import (
    as_int,
    check_text,
    read_bool,
    read_choice,
    read_int,
    read_size,
    read_string,
)
from vace_server.errors import (
    EmptyInput,
    EmptyModel,
    IllegalInput,
    InvalidParameter,
    field_invalid,
    field_required,
)
from vace_server.tasks.spec import (
    Control,
    ExpandMode,
    MaskType,
    Outpaint,
    Reference,
    ReferenceRole,
    TaskSpec,
    VaceFunction,
)

BODY_INVALID_MESSAGE = "Required body invalid, please check the request body format."
MODEL_NOT_EXIST_MESSAGE = "Model not exist."
OBJ_OR_BG_LENGTH_MESSAGE = "ref_images_url and obj_or_bg must be the same length."

# The 1.x SDK overwrites input.function with its endpoint's own name (§11.2).
SDK1_FUNCTION_PLACEHOLDER = "video-synthesis"
# Input fields that 1.x keyword arguments put in `parameters` (§3, 1.x SDK compatibility).
PARAMETER_FALLBACK_FIELDS = frozenset(
    {
        "ref_images_url",
        "video_url",
        "mask_image_url",
        "mask_video_url",
        "mask_frame_id",
        "first_frame_url",
        "last_frame_url",
        "first_clip_url",
        "last_clip_url",
    }
)

MAX_PROMPT_CHARS = 800
MAX_NEGATIVE_PROMPT_CHARS = 800  # cut like the prompt, never refused for its length
SEED_MAX = 2147483647
FIXED_DURATION = 5  # seconds; "fixed at 5, cannot be modified" (§5)


FUNCTIONS: Mapping[str, VaceFunction] = {f.value: f for f in VaceFunction}
ROLES: Mapping[str, ReferenceRole] = {r.value: r for r in ReferenceRole}
MASK_TYPES: Mapping[str, MaskType] = {m.value: m for m in MaskType}
EXPAND_MODES: Mapping[str, ExpandMode] = {m.value: m for m in ExpandMode}
DEFAULT_MASK_TYPE = MaskType.TRACKING
DEFAULT_EXPAND_MODE = ExpandMode.HULL
DEFAULT_MASK_FRAME_ID = 1  # also the lowest one: frames are numbered from 1
BOOL_DEFAULTS: Mapping[str, bool] = {"prompt_extend": True, "watermark": False}


def parse_create_request(
    body: bytes,
    *,
    oss_resolve: bool,
    draw_seed: Callable[[], int],
    served: ServedNames = DEFAULT_SERVED,
) -> TaskSpec:
    """Validates a raw create body and returns the task it describes.

    `oss_resolve` is whether the request carried `X-DashScope-OssResourceResolve: enable`.
    `draw_seed` is called (once) only when the client sent no `parameters.seed`. `served`:
    the model names this deployment serves (VACE_MODELS; default: the one model's names).

    Returns: a TaskSpec with every default applied and the prompt and negative prompt
    truncated to 800 characters.
    Raises: InvalidParameter, EmptyModel, EmptyInput, IllegalInput (all HTTP 400) for the
    first problem found, in the order given in the module docstring.
    Side effects: none besides calling `draw_seed`.
    """
    data = _load_object(body)
    model = _model(data, served)
    wire = _envelope(data, oss_resolve=oss_resolve)
    return parse_request_values(wire, model_name=model, draw_seed=draw_seed, served=served)


def parse_request_values(
    wire: RequestValues,
    *,
    model_name: str,
    draw_seed: Callable[[], int],
    served: ServedNames = DEFAULT_SERVED,
) -> TaskSpec:
    """The rules from `input.function` on (see the module docstring) over `wire`'s values.

    Returns / Raises: as `parse_create_request`."""
    function = _function(wire)
    prompt = _prompt(wire)
    negative_prompt = read_string(
        wire.inp("negative_prompt"),
        "input.negative_prompt",
        max_chars=MAX_NEGATIVE_PROMPT_CHARS,
    )
    fields = _READERS[function](wire)
    prompt_extend, watermark, seed = _common_parameters(wire, function)
    return TaskSpec(
        function=function,
        prompt=prompt,
        seed=draw_seed() if seed is None else seed,
        model_name=model_name,
        upload_model=served.upload_model(model_name),
        negative_prompt=negative_prompt,
        prompt_extend=prompt_extend,
        watermark=watermark,
        **fields,
    )


@dataclass(frozen=True)
class _Wire(RequestValues):
    """The `input` and `parameters` objects of one request, with the 1.x fallback applied."""

    input: Mapping[str, Any]
    parameters: Mapping[str, Any]
    oss_resolve: bool

    def inp(self, key: str) -> Any:
        """`input[key]`; for 1.x-SDK media fields, `parameters[key]` when input lacks it."""
        value = self.input.get(key)
        if value is None and key in PARAMETER_FALLBACK_FIELDS:
            return self.parameters.get(key)
        return value

    def param(self, key: str) -> Any:
        return self.parameters.get(key)

    def check_url(self, value: Any, field: str) -> str:
        return check_url(value, field, oss_resolve=self.oss_resolve)


# ---------------------------------------------------------------- envelope
def _reject_constant(name: str) -> NoReturn:
    # json.loads accepts NaN / Infinity / -Infinity by default; they are not JSON.
    raise ValueError(f"not JSON: {name}")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # A repeated key means different things to different parsers (first or last wins): refuse.
    data = dict(pairs)
    if len(data) != len(pairs):
        raise ValueError("duplicate key")
    return data


def _load_object(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body, parse_constant=_reject_constant, object_pairs_hook=_unique_keys)
    except (ValueError, RecursionError):  # JSONDecodeError and UnicodeDecodeError included
        raise InvalidParameter(BODY_INVALID_MESSAGE) from None
    if not isinstance(data, dict):
        raise InvalidParameter(BODY_INVALID_MESSAGE)
    return data


def _model(data: Mapping[str, Any], served: ServedNames) -> str:
    model = data.get("model")
    if model is None or model == "":
        raise EmptyModel()
    if not isinstance(model, str) or not served.accepts(model):
        raise InvalidParameter(MODEL_NOT_EXIST_MESSAGE)  # no deployment model has this name
    return model


def _envelope(data: Mapping[str, Any], *, oss_resolve: bool) -> _Wire:
    wire_input = data.get("input")
    if wire_input is None:
        raise EmptyInput()
    if not isinstance(wire_input, dict):
        raise IllegalInput()
    parameters = data.get("parameters")
    if parameters is None:
        parameters = {}
    elif not isinstance(parameters, dict):
        raise field_invalid("parameters")
    return _Wire(input=wire_input, parameters=parameters, oss_resolve=oss_resolve)


def _function(wire: RequestValues) -> VaceFunction:
    value = wire.inp("function")
    if value is None or value in ("", SDK1_FUNCTION_PLACEHOLDER):
        raise field_required("input.function")
    if not isinstance(value, str) or value not in FUNCTIONS:
        raise field_invalid("input.function", FUNCTIONS)
    return FUNCTIONS[value]


def _prompt(wire: RequestValues) -> str:
    value = wire.inp("prompt")
    if value is None:
        raise field_required("input.prompt")
    if not isinstance(value, str):
        raise field_invalid("input.prompt")
    if not value.strip():
        raise field_required("input.prompt")
    return check_text(value, "input.prompt")[:MAX_PROMPT_CHARS]


def _common_parameters(
    wire: RequestValues, function: VaceFunction
) -> tuple[bool, bool, int | None]:
    """(prompt_extend, watermark, seed or None); also checks `duration` where it applies."""
    prompt_extend = read_bool(
        wire.param("prompt_extend"),
        "parameters.prompt_extend",
        default=BOOL_DEFAULTS["prompt_extend"],
    )
    watermark = read_bool(
        wire.param("watermark"), "parameters.watermark", default=BOOL_DEFAULTS["watermark"]
    )
    seed = read_int(wire.param("seed"), "parameters.seed", low=0, high=SEED_MAX)
    duration = wire.param("duration")
    # Not read where the output follows the input video (repainting).
    applies = "duration" in FUNCTION_FIELDS[function].parameters
    if applies and duration is not None:
        _check_duration(duration)
    return prompt_extend, watermark, seed


def _check_duration(value: Any) -> None:
    if as_int(value, "parameters.duration") != FIXED_DURATION:
        raise field_invalid("parameters.duration")


# ---------------------------------------------------------------- shared pieces
def _control(
    wire: RequestValues, function: VaceFunction, *, video_given: bool = False
) -> Control | None:
    """`control_condition`; an empty string means "no extraction", like an absent one."""
    fields = FUNCTION_FIELDS[function]
    rule = fields.control_rule
    required = rule is ControlRule.ALWAYS or (rule is ControlRule.WITH_VIDEO and video_given)
    value = wire.param("control_condition")
    if value is None or value == "":
        if required:
            raise field_required("parameters.control_condition")
        return None
    return read_choice(value, "parameters.control_condition", fields.controls)


def _single_reference(wire: RequestValues, function: VaceFunction) -> tuple[Reference, ...]:
    """repainting / edit: an optional `ref_images_url` of which only the first image is kept."""
    value = wire.inp("ref_images_url")
    if value is None or value == []:
        return ()
    urls = wire.url_list("ref_images_url", keep=FUNCTION_FIELDS[function].max_references)
    return (Reference(url=urls[0], role=ReferenceRole.SUBJECT),)


def _roles(value: Any, count: int) -> list[ReferenceRole]:
    """`parameters.obj_or_bg` for `count` kept images (§5.1)."""
    field = "parameters.obj_or_bg"
    if value is None:
        if count == 1:
            return [ReferenceRole.SUBJECT]
        raise InvalidParameter(OBJ_OR_BG_LENGTH_MESSAGE)
    # Every bad value of this field lists its values (and the one-scene rule) the same way.
    allowed = [f"a list of {' / '.join(ROLES)}, one per image, at most one bg"]
    if not isinstance(value, list):
        raise field_invalid(field, allowed)
    roles: list[ReferenceRole] = []
    for item in value[:MAX_REFERENCES]:
        if not isinstance(item, str) or item not in ROLES:
            raise field_invalid(field, allowed)
        roles.append(ROLES[item])
    if len(roles) != count:
        raise InvalidParameter(OBJ_OR_BG_LENGTH_MESSAGE)
    if roles.count(ReferenceRole.SCENE) > MAX_SCENE_REFERENCES:
        raise field_invalid(field, allowed)
    return roles


# ---------------------------------------------------------------- the five functions
def _image_reference(wire: RequestValues) -> dict[str, Any]:
    value = wire.inp("ref_images_url")
    if value is None:
        raise field_required("input.ref_images_url")
    keep = FUNCTION_FIELDS[VaceFunction.IMAGE_REFERENCE].max_references
    urls = wire.url_list("ref_images_url", keep=keep)
    roles = _roles(wire.param("obj_or_bg"), len(urls))
    return {
        "references": tuple(
            Reference(url=url, role=role) for url, role in zip(urls, roles, strict=True)
        ),
        "size": read_size(wire.param("size"), "parameters.size"),
    }


def _video_repainting(wire: RequestValues) -> dict[str, Any]:
    return {
        "video_url": wire.required_url("video_url"),
        "references": _single_reference(wire, VaceFunction.VIDEO_REPAINTING),
        "control": _control(wire, VaceFunction.VIDEO_REPAINTING),
        "strength": wire.number("strength"),
    }


def _video_edit(wire: RequestValues) -> dict[str, Any]:
    video_url = wire.required_url("video_url")
    references = _single_reference(wire, VaceFunction.VIDEO_EDIT)
    mask_image_url = wire.url("mask_image_url")
    # With both masks given, the mask image wins and the mask video is not even read (§5.3).
    mask_video_url = wire.url("mask_video_url") if mask_image_url is None else None
    if mask_image_url is None and mask_video_url is None:
        raise field_required("input.mask_image_url")
    mask_frame_id = read_int(
        wire.inp("mask_frame_id"), "input.mask_frame_id", low=DEFAULT_MASK_FRAME_ID
    )
    control = _control(wire, VaceFunction.VIDEO_EDIT)
    mask_type = read_choice(wire.param("mask_type"), "parameters.mask_type", MASK_TYPES)
    expand_ratio = wire.number("expand_ratio")
    expand_mode = read_choice(wire.param("expand_mode"), "parameters.expand_mode", EXPAND_MODES)
    return {
        "video_url": video_url,
        "references": references,
        "mask_image_url": mask_image_url,
        "mask_video_url": mask_video_url,
        "mask_frame_id": DEFAULT_MASK_FRAME_ID if mask_frame_id is None else mask_frame_id,
        "control": control,
        "mask_type": mask_type or DEFAULT_MASK_TYPE,
        "expand_ratio": expand_ratio,
        "expand_mode": expand_mode or DEFAULT_EXPAND_MODE,
        "size": read_size(wire.param("size"), "parameters.size"),
    }


def _video_extension(wire: RequestValues) -> dict[str, Any]:
    frames = {key: wire.url(key) for key in EXTENSION_FIELDS}
    if all(url is None for url in frames.values()):
        raise field_required("input.first_clip_url")
    video_url = wire.url("video_url")
    control = _control(wire, VaceFunction.VIDEO_EXTENSION, video_given=video_url is not None)
    return {"video_url": video_url, "control": control, **frames}


def _video_outpainting(wire: RequestValues) -> dict[str, Any]:
    video_url = wire.required_url("video_url")
    scales = {side: wire.number(f"{side}_scale") for side in OUTPAINT_SIDES}
    return {"video_url": video_url, "outpaint": Outpaint(**scales)}


_READERS: Mapping[VaceFunction, Callable[[RequestValues], dict[str, Any]]] = {
    VaceFunction.IMAGE_REFERENCE: _image_reference,
    VaceFunction.VIDEO_REPAINTING: _video_repainting,
    VaceFunction.VIDEO_EDIT: _video_edit,
    VaceFunction.VIDEO_EXTENSION: _video_extension,
    VaceFunction.VIDEO_OUTPAINTING: _video_outpainting,
}
