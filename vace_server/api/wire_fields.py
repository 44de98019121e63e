"""Which wire fields each DashScope function reads (docs/contract.md): one table that the
create-request validator (`validation.py`) reads its per-function rules from, and that the
playground's schema (`playground_schema.py`) serves, so the page and the validator cannot
disagree."""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from dataclasses import dataclass

from vace_server.tasks.spec import Control, VaceFunction

EXTENSION_FIELDS = ("first_frame_url", "last_frame_url", "first_clip_url", "last_clip_url")
OUTPAINT_SIDES = ("top", "bottom", "left", "right")
MAX_REFERENCES = 3
MAX_SCENE_REFERENCES = 1  # at most one `bg` image

REPAINTING_CONTROLS: Mapping[str, Control] = {c.value: c for c in Control}
OTHER_CONTROLS: Mapping[str, Control] = {
    c.value: c for c in (Control.POSE_BODY_FACE, Control.DEPTH)
}


class ControlRule(enum.StrEnum):
    """When `parameters.control_condition` is required."""

    ALWAYS = "always"
    NEVER = "never"
    WITH_VIDEO = "with_video_url"  # video_extension: only with a motion-reference video


@dataclass(frozen=True)
class FunctionFields:
    """The wire fields one function reads besides the common ones (prompt, negative_prompt,
    prompt_extend, watermark, seed); any other key is ignored. The readers in validation.py use
    `controls`, `control_rule`, `max_references`, `one_of` and whether `duration` is listed;
    the playground's schema serves this table, and tests/api/test_playground_schema.py checks
    `inputs` / `required` / `parameters` against what the readers do."""

    inputs: tuple[str, ...]  # `input.*` keys read
    parameters: tuple[str, ...] = ()  # `parameters.*` keys read
    required: tuple[str, ...] = ()  # inputs that must be given
    one_of: tuple[str, ...] = ()  # at least one of these inputs must be given
    controls: Mapping[str, Control] = dataclasses.field(default_factory=dict)  # empty: not read
    control_rule: ControlRule = ControlRule.NEVER
    max_references: int = 0  # `ref_images_url` entries kept


FUNCTION_FIELDS: Mapping[VaceFunction, FunctionFields] = {
    VaceFunction.IMAGE_REFERENCE: FunctionFields(
        inputs=("ref_images_url",),
        parameters=("obj_or_bg", "size", "duration"),
        required=("ref_images_url",),
        max_references=MAX_REFERENCES,
    ),
    VaceFunction.VIDEO_REPAINTING: FunctionFields(
        inputs=("video_url", "ref_images_url"),
        parameters=("control_condition", "strength"),  # no duration: the output follows the input
        required=("video_url",),
        controls=REPAINTING_CONTROLS,
        control_rule=ControlRule.ALWAYS,
        max_references=1,
    ),
    VaceFunction.VIDEO_EDIT: FunctionFields(
        inputs=("video_url", "ref_images_url", "mask_image_url", "mask_video_url", "mask_frame_id"),
        parameters=(
            "control_condition",
            "mask_type",
            "expand_ratio",
            "expand_mode",
            "size",
            "duration",
        ),
        required=("video_url",),
        one_of=("mask_image_url", "mask_video_url"),
        controls=OTHER_CONTROLS,
        max_references=1,
    ),
    VaceFunction.VIDEO_EXTENSION: FunctionFields(
        inputs=(*EXTENSION_FIELDS, "video_url"),
        parameters=("control_condition", "duration"),
        one_of=EXTENSION_FIELDS,
        controls=OTHER_CONTROLS,
        control_rule=ControlRule.WITH_VIDEO,
    ),
    VaceFunction.VIDEO_OUTPAINTING: FunctionFields(
        inputs=("video_url",),
        parameters=(*(f"{side}_scale" for side in OUTPAINT_SIDES), "duration"),
        required=("video_url",),
    ),
}
