"""Valid create bodies per function: defaults, bounds, applicability, 1.x fallback.

See docs/contract.md §6 (applicability) and §3 (the 1.x fallback).

The official examples and SDK bodies are in test_validation_examples.py; the rejected bodies
are the `BAD_REQUESTS` table in test_validation.py.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from vace_server.api.validation import parse_create_request
from vace_server.tasks.spec import (
    Control,
    ExpandMode,
    MaskType,
    Outpaint,
    Reference,
    ReferenceRole,
    TaskSpec,
)

MODEL = "wanx2.1-vace-plus"
OBJ = ReferenceRole.SUBJECT
IMG, VIDEO, MASK = "http://a/1.png", "http://a/v.mp4", "http://a/m.png"


def parse(body: dict[str, Any], *, oss: bool = False, seed: int = 7) -> TaskSpec:
    raw = json.dumps(body, ensure_ascii=False).encode()
    return parse_create_request(raw, oss_resolve=oss, draw_seed=lambda: seed)


def body(inp: dict[str, Any], params: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"model": MODEL, "input": {"prompt": "p", **inp}, "parameters": params or {}}


# ---------------------------------------------------------------- function details
def test_edit_defaults_and_masks() -> None:
    both = body(
        {
            "function": "video_edit",
            "video_url": VIDEO,
            "mask_image_url": MASK,
            "mask_video_url": "ftp://dropped",
        },
        {"control_condition": ""},
    )
    spec = parse(both)
    assert (spec.mask_image_url, spec.mask_video_url, spec.control) == (MASK, None, None)
    assert (spec.mask_frame_id, spec.mask_type, spec.expand_mode, spec.expand_ratio) == (
        1,
        MaskType.TRACKING,
        ExpandMode.HULL,
        0.05,
    )
    video_mask = body(
        {
            "function": "video_edit",
            "video_url": VIDEO,
            "mask_video_url": "http://a/mv.mp4",
            "mask_frame_id": 30,
        },
        {
            "mask_type": "fixed",
            "expand_mode": "bbox",
            "expand_ratio": 1,
            "control_condition": "posebodyface",
        },
    )
    spec = parse(video_mask)
    assert (spec.mask_image_url, spec.mask_video_url, spec.mask_frame_id) == (
        None,
        "http://a/mv.mp4",
        30,
    )
    assert (spec.mask_type, spec.expand_mode, spec.expand_ratio, spec.control) == (
        MaskType.FIXED,
        ExpandMode.BBOX,
        1.0,
        Control.POSE_BODY_FACE,
    )


def test_repainting_strength_and_every_control() -> None:
    for control in Control:
        wire = body(
            {"function": "video_repainting", "video_url": VIDEO},
            {"control_condition": control.value, "strength": 0},
        )
        spec = parse(wire)
        assert (spec.control, spec.strength) == (control, 0.0)


def test_extension_motion_reference_and_all_frames() -> None:
    urls = {
        k: f"http://a/{k}"
        for k in ("first_frame_url", "last_frame_url", "first_clip_url", "last_clip_url")
    }
    wire = body(
        {"function": "video_extension", "video_url": VIDEO, **urls},
        {"control_condition": "posebodyface"},
    )
    spec = parse(wire)
    assert (spec.video_url, spec.control) == (VIDEO, Control.POSE_BODY_FACE)
    assert (spec.first_frame_url, spec.last_frame_url) == (
        urls["first_frame_url"],
        urls["last_frame_url"],
    )
    assert (spec.first_clip_url, spec.last_clip_url) == (
        urls["first_clip_url"],
        urls["last_clip_url"],
    )
    only_last_frame = body({"function": "video_extension", "last_frame_url": IMG})
    assert parse(only_last_frame).last_frame_url == IMG


def test_outpainting_scale_bounds() -> None:
    wire = body(
        {"function": "video_outpainting", "video_url": VIDEO},
        {"top_scale": 1, "bottom_scale": 2, "left_scale": 1.25},
    )
    assert parse(wire).outpaint == Outpaint(top=1.0, bottom=2.0, left=1.25, right=1.0)


# ---------------------------------------------------------------- applicability (§6)
@pytest.mark.parametrize(
    ("inp", "params"),
    [
        (
            {"function": "video_repainting", "video_url": VIDEO, "mask_frame_id": 0},
            {
                "control_condition": "scribble",
                "size": "bogus",
                "duration": 99,
                "obj_or_bg": 1,
                "mask_type": "x",
                "top_scale": 9,
            },
        ),
        (
            {
                "function": "image_reference",
                "ref_images_url": [IMG],
                "video_url": "ftp://x",
                "mask_image_url": "data:,",
                "first_clip_url": 1,
            },
            {"control_condition": "bogus", "strength": 5, "expand_ratio": 7, "left_scale": 0},
        ),
        (
            {"function": "video_outpainting", "video_url": VIDEO, "ref_images_url": "x"},
            {"size": "bogus", "strength": "x", "obj_or_bg": "x", "control_condition": 1},
        ),
        (
            {"function": "video_extension", "first_frame_url": IMG, "mask_video_url": "ftp://x"},
            {"size": "bogus", "strength": 9, "mask_type": 1, "right_scale": 5},
        ),
        (
            {
                "function": "video_edit",
                "video_url": VIDEO,
                "mask_image_url": MASK,
                "first_frame_url": "ftp://x",
            },
            {"strength": 9, "obj_or_bg": ["bg", "bg"], "bottom_scale": 0},
        ),
    ],
    ids=["repainting", "image_reference", "outpainting", "extension", "edit"],
)
def test_fields_of_other_functions_are_ignored(inp: dict[str, Any], params: dict[str, Any]) -> None:
    # Ignored, not merely accepted: the spec is the one of the body without them.
    own = OWN_FIELDS[inp["function"]]
    clean = body(
        {k: v for k, v in inp.items() if k in own},
        {k: v for k, v in params.items() if k in own},
    )
    assert parse(body(inp, params)) == parse(clean)


# The fields each case above keeps (everything else in it belongs to another function).
OWN_FIELDS = {
    "video_repainting": {"function", "video_url", "control_condition"},
    "image_reference": {"function", "ref_images_url"},
    "video_outpainting": {"function", "video_url"},
    "video_extension": {"function", "first_frame_url"},
    "video_edit": {"function", "video_url", "mask_image_url"},
}


# ---------------------------------------------------------------- 1.x fallback, URLs
def test_media_fields_fall_back_to_parameters() -> None:
    wire = body(
        {"function": "video_edit", "video_url": None},
        {"video_url": VIDEO, "mask_image_url": MASK, "mask_frame_id": 5, "ref_images_url": [IMG]},
    )
    spec = parse(wire)
    assert (spec.video_url, spec.mask_image_url, spec.mask_frame_id) == (VIDEO, MASK, 5)
    assert spec.references == (Reference(IMG, OBJ),)


def test_input_wins_over_parameters() -> None:
    wire = body(
        {"function": "video_outpainting", "video_url": VIDEO},
        {"video_url": "ftp://not-read"},
    )
    assert parse(wire).video_url == VIDEO


@pytest.mark.parametrize(
    "url",
    [
        "https://a/x.mp4",
        "HTTP://A.example/x.mp4",
        "http://1.2.3.4:8080/x.mp4?a=1&b=%E4%B8%AD#f",
        "http://user@a/x.mp4",
        "http://[::1]/x.mp4",
        "http://a/é.mp4",
    ],
)
def test_accepted_http_urls(url: str) -> None:
    assert parse(body({"function": "video_outpainting", "video_url": url})).video_url == url
