"""api/wire_names.py: the one table from internal names (InputField, models) to wire names."""

from __future__ import annotations

import dataclasses
import json

import pytest

from vace_server import errors
from vace_server.api import validation
from vace_server.api.wire_names import (
    CANONICAL_MODEL,
    MODEL_NAMES,
    WIRE_NAMES,
    canonical_model,
    wire_message,
    wire_name,
)
from vace_server.errors import InputField
from vace_server.tasks.spec import Outpaint, TaskSpec


def test_every_field_has_a_wire_name_read_by_the_validator() -> None:
    assert set(WIRE_NAMES) == set(InputField)
    assert len(set(WIRE_NAMES.values())) == len(WIRE_NAMES)  # one wire name per field
    read = (
        set(validation.PARAMETER_FALLBACK_FIELDS)
        | {f"{side}_scale" for side in validation.OUTPAINT_SIDES}
        | {"control_condition"}
    )
    for field, name in WIRE_NAMES.items():
        where, key = name.split(".")
        assert where in ("input", "parameters") and key in read, (field, name)


def test_every_field_is_a_task_spec_attribute() -> None:
    attributes = {f.name for f in dataclasses.fields(TaskSpec)}
    sides = {f"outpaint.{f.name}" for f in dataclasses.fields(Outpaint)}
    assert {f.value for f in InputField} <= attributes | sides


def test_mentions_become_wire_names() -> None:
    message = (
        f"The size is not match: {InputField.MASK_IMAGE.mention} is 1x2 but "
        f"{InputField.VIDEO.mention} is 3x4; {InputField.CONTROL.key_mention} 'depth'"
    )
    assert wire_message(message) == (
        "The size is not match: input.mask_image_url is 1x2 but input.video_url is 3x4; "
        "control_condition 'depth'"
    )
    assert wire_name(InputField.OUTPAINT_TOP) == "parameters.top_scale"
    assert wire_name(InputField.OUTPAINT_TOP, key_only=True) == "top_scale"


def test_text_without_mentions_is_unchanged() -> None:
    # rows of older versions hold finished wire messages; client URLs cannot hold the marks
    for text in ("Field required: input.video_url", "Download http://a/{x}=1 timeout", ""):
        assert wire_message(text) == text


def test_an_unknown_mention_shows_its_attribute_name() -> None:
    newer = InputField.VIDEO.mention.replace("video_url", "depth_url")
    assert wire_message(f"{newer} is bad") == "depth_url is bad"


def test_logs_see_attribute_names_and_responses_wire_names() -> None:
    err = errors.field_required(InputField.FIRST_CLIP.mention)
    assert str(err) == "Field required: first_clip_url"
    assert err.fields == (InputField.FIRST_CLIP,)
    assert errors.InvalidURL().fields == ()
    assert wire_message(err.message) == "Field required: input.first_clip_url"


def test_both_model_names_are_one_model() -> None:
    # the validator's default: exactly these names, both bound to the one upload key
    assert set(validation.DEFAULT_SERVED.canonical) == MODEL_NAMES
    assert set(validation.DEFAULT_SERVED.canonical.values()) == {CANONICAL_MODEL}
    assert {canonical_model(name) for name in MODEL_NAMES} == {CANONICAL_MODEL}
    assert canonical_model("other") == "other"


@pytest.mark.parametrize("name", sorted(MODEL_NAMES))
def test_the_validator_binds_uploads_to_the_canonical_model(name: str) -> None:
    body = {
        "model": name,
        "input": {"function": "video_outpainting", "prompt": "p", "video_url": "http://a/v"},
    }
    spec = validation.parse_create_request(
        json.dumps(body).encode(), oss_resolve=False, draw_seed=lambda: 1
    )
    assert (spec.model_name, spec.upload_model) == (name, CANONICAL_MODEL)


def test_rows_without_upload_model_still_load() -> None:
    spec = TaskSpec(function=validation.FUNCTIONS["image_reference"], prompt="p", seed=1)
    older = json.loads(spec.to_json())
    del older["upload_model"]  # as written before it was recorded
    older["model_name"] = CANONICAL_MODEL
    loaded = TaskSpec.from_json(json.dumps(older))
    assert (loaded.model_name, loaded.upload_model) == (CANONICAL_MODEL, CANONICAL_MODEL)
    assert TaskSpec.from_json(loaded.to_json()) == loaded
