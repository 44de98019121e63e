"""Valid create bodies become the expected TaskSpec (docs/contract.md §3, §5, §6, §11.2-§11.3).

The rejected bodies are the `BAD_REQUESTS` table in test_validation.py.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from vace_server.api.validation import parse_create_request
from vace_server.tasks.spec import (
    Control,
    MaskType,
    Outpaint,
    Reference,
    ReferenceRole,
    TaskSpec,
    VaceFunction,
)

MODEL = "wanx2.1-vace-plus"
CDN = "http://wanx.alicdn.com/material/20250318/"
OBJ, BG = ReferenceRole.SUBJECT, ReferenceRole.SCENE
IMG, IMG2, VIDEO, MASK = "http://a/1.png", "http://a/2.png", "http://a/v.mp4", "http://a/m.png"


def parse(body: dict[str, Any], *, oss: bool = False, seed: int = 7) -> TaskSpec:
    raw = json.dumps(body, ensure_ascii=False).encode()
    return parse_create_request(raw, oss_resolve=oss, draw_seed=lambda: seed)


def body(inp: dict[str, Any], params: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"model": MODEL, "input": {"prompt": "p", **inp}, "parameters": params or {}}


def no_draw() -> int:
    raise AssertionError("draw_seed must not be called when the client sent a seed")


# ---------------------------------------------------------------- official examples (§5)
OFFICIAL: list[tuple[str, dict[str, Any], TaskSpec]] = [
    (
        "image_reference",
        {
            "model": MODEL,
            "input": {
                "function": "image_reference",
                "prompt": "A girl walks slowly out of an ancient forest shrouded in morning mist.",
                "ref_images_url": [
                    CDN + "image_reference_2_5_16.png",
                    CDN + "image_reference_1_5_16.png",
                ],
            },
            "parameters": {"prompt_extend": True, "obj_or_bg": ["obj", "bg"], "size": "1280*720"},
        },
        TaskSpec(
            model_name=MODEL,
            upload_model=MODEL,
            function=VaceFunction.IMAGE_REFERENCE,
            prompt="A girl walks slowly out of an ancient forest shrouded in morning mist.",
            seed=7,
            size=(1280, 720),
            references=(
                Reference(CDN + "image_reference_2_5_16.png", OBJ),
                Reference(CDN + "image_reference_1_5_16.png", BG),
            ),
        ),
    ),
    (
        "video_repainting",
        {
            "model": MODEL,
            "input": {
                "function": "video_repainting",
                "prompt": "A black steampunk-style car drives along the street.",
                "video_url": CDN + "video_repainting_1.mp4",
            },
            "parameters": {"prompt_extend": False, "control_condition": "depth"},
        },
        TaskSpec(
            model_name=MODEL,
            upload_model=MODEL,
            function=VaceFunction.VIDEO_REPAINTING,
            prompt="A black steampunk-style car drives along the street.",
            seed=7,
            prompt_extend=False,
            video_url=CDN + "video_repainting_1.mp4",
            control=Control.DEPTH,
        ),
    ),
    (
        "video_edit",
        {
            "model": MODEL,
            "input": {
                "function": "video_edit",
                "prompt": "A lion in a suit elegantly sips coffee in a Parisian-style French cafe.",
                "mask_image_url": CDN + "video_edit_1_mask.png",
                "video_url": CDN + "video_edit_2.mp4",
                "mask_frame_id": 1,
            },
            "parameters": {"prompt_extend": False, "mask_type": "tracking", "expand_ratio": 0.05},
        },
        TaskSpec(
            model_name=MODEL,
            upload_model=MODEL,
            function=VaceFunction.VIDEO_EDIT,
            prompt="A lion in a suit elegantly sips coffee in a Parisian-style French cafe.",
            seed=7,
            prompt_extend=False,
            size=(1280, 720),
            video_url=CDN + "video_edit_2.mp4",
            mask_image_url=CDN + "video_edit_1_mask.png",
            mask_frame_id=1,
            mask_type=MaskType.TRACKING,
            expand_ratio=0.05,
        ),
    ),
    (
        "video_extension",
        {
            "model": MODEL,
            "input": {
                "function": "video_extension",
                "prompt": "A dog wearing sunglasses skateboards down the street, 3D cartoon.",
                "first_clip_url": CDN + "video_extension_1.mp4",
            },
            "parameters": {"prompt_extend": False},
        },
        TaskSpec(
            model_name=MODEL,
            upload_model=MODEL,
            function=VaceFunction.VIDEO_EXTENSION,
            prompt="A dog wearing sunglasses skateboards down the street, 3D cartoon.",
            seed=7,
            prompt_extend=False,
            first_clip_url=CDN + "video_extension_1.mp4",
        ),
    ),
    (
        "video_outpainting",
        {
            "model": MODEL,
            "input": {
                "function": "video_outpainting",
                "prompt": "An elegant woman plays the violin passionately, "
                "a full symphony orchestra behind her.",
                "video_url": CDN + "video_outpainting_1.mp4",
            },
            "parameters": {
                "prompt_extend": False,
                "top_scale": 1.5,
                "bottom_scale": 1.5,
                "left_scale": 1.5,
                "right_scale": 1.5,
            },
        },
        TaskSpec(
            model_name=MODEL,
            upload_model=MODEL,
            function=VaceFunction.VIDEO_OUTPAINTING,
            prompt="An elegant woman plays the violin passionately, "
            "a full symphony orchestra behind her.",
            seed=7,
            prompt_extend=False,
            video_url=CDN + "video_outpainting_1.mp4",
            outpaint=Outpaint(top=1.5, bottom=1.5, left=1.5, right=1.5),
        ),
    ),
]


@pytest.mark.parametrize(
    ("wire", "expected"), [o[1:] for o in OFFICIAL], ids=[o[0] for o in OFFICIAL]
)
def test_official_example(wire: dict[str, Any], expected: TaskSpec) -> None:
    spec = parse(wire)
    assert spec == expected
    assert TaskSpec.from_json(spec.to_json()) == spec


# ---------------------------------------------------------------- SDK bodies (§11.2, §11.3)
def test_sdk1_body_b_extra_input() -> None:
    wire = {
        "model": MODEL,
        "parameters": {"obj_or_bg": ["obj"], "size": "1280*720", "seed": 42, "watermark": False},
        "input": {
            "prompt": "hello",
            "extend_prompt": True,
            "function": "image_reference",
            "ref_images_url": ["http://a/1.png"],
        },
    }
    assert parse_create_request(
        json.dumps(wire).encode(), oss_resolve=False, draw_seed=no_draw
    ) == TaskSpec(
        model_name=MODEL,
        upload_model=MODEL,
        function=VaceFunction.IMAGE_REFERENCE,
        prompt="hello",
        seed=42,
        size=(1280, 720),
        references=(Reference("http://a/1.png", OBJ),),
    )


def test_sdk1_body_c_oss_with_resolve_header() -> None:
    wire = {
        "model": MODEL,
        "parameters": {"mask_type": "tracking", "expand_ratio": 0.05},
        "input": {
            "prompt": "p",
            "extend_prompt": True,
            "function": "video_edit",
            "video_url": "oss://dashscope-instant/a/b.mp4",
            "mask_image_url": "oss://dashscope-instant/a/m.png",
            "mask_frame_id": 1,
        },
    }
    assert parse(wire, oss=True) == TaskSpec(
        model_name=MODEL,
        upload_model=MODEL,
        function=VaceFunction.VIDEO_EDIT,
        prompt="p",
        seed=7,
        size=(1280, 720),
        video_url="oss://dashscope-instant/a/b.mp4",
        mask_image_url="oss://dashscope-instant/a/m.png",
    )


def test_sdk2_body() -> None:
    wire = {
        "model": MODEL,
        "input": {
            "prompt": "dog skating",
            "first_clip_url": "oss://dashscope-instant/.../clip.mp4",
            "function": "video_extension",
        },
        "parameters": {"control_condition": "depth", "prompt_extend": False},
    }
    assert parse(wire, oss=True) == TaskSpec(
        model_name=MODEL,
        upload_model=MODEL,
        function=VaceFunction.VIDEO_EXTENSION,
        prompt="dog skating",
        seed=7,
        prompt_extend=False,
        first_clip_url="oss://dashscope-instant/.../clip.mp4",
        control=Control.DEPTH,
    )


def test_sdk1_extend_prompt_is_ignored() -> None:
    wire = body({"function": "image_reference", "ref_images_url": [IMG], "extend_prompt": "x"})
    assert parse(wire).prompt_extend is True


# ---------------------------------------------------------------- prompt, seed, model
@pytest.mark.parametrize(
    ("prompt", "expected"),
    [("x" * 1000, "x" * 800), ("中" * 801, "中" * 800), ("y" * 800, "y" * 800), (" a ", " a ")],
)
def test_prompt_truncated_to_800_characters(prompt: str, expected: str) -> None:
    wire = body({"function": "video_outpainting", "video_url": VIDEO, "prompt": prompt})
    assert parse(wire).prompt == expected


def test_seed_drawn_only_when_absent() -> None:
    wire = body({"function": "video_outpainting", "video_url": VIDEO})
    assert parse(wire, seed=123456).seed == 123456
    wire_null = body({"function": "video_outpainting", "video_url": VIDEO}, {"seed": None})
    assert parse(wire_null, seed=99).seed == 99


@pytest.mark.parametrize(("sent", "kept"), [(0, 0), (2147483647, 2147483647), (42.0, 42)])
def test_seed_given(sent: float, kept: int) -> None:
    raw = json.dumps(body({"function": "video_outpainting", "video_url": VIDEO}, {"seed": sent}))
    assert parse_create_request(raw.encode(), oss_resolve=False, draw_seed=no_draw).seed == kept


def test_both_model_names_accepted_and_kept() -> None:
    wire = {
        **body({"function": "video_outpainting", "video_url": VIDEO}),
        "model": "wan2.1-vace-plus",
    }
    spec = parse(wire)
    assert spec.model_name == "wan2.1-vace-plus"
    assert (
        spec.upload_model
        == parse(body({"function": "video_outpainting", "video_url": VIDEO})).upload_model
    )


def test_optional_common_fields() -> None:
    wire = body(
        {"function": "video_outpainting", "video_url": VIDEO, "negative_prompt": "blur", "x": 1},
        {"watermark": True, "prompt_extend": False, "duration": 5.0, "unknown": [1]},
    )
    spec = parse(wire)
    assert (spec.negative_prompt, spec.watermark, spec.prompt_extend) == ("blur", True, False)


# ---------------------------------------------------------------- references (§5.1-§5.3)
def test_more_than_three_references_keep_first_three() -> None:
    refs = [IMG, IMG2, "http://a/3.png", "ftp://dropped", "data:,dropped"]
    wire = body(
        {"function": "image_reference", "ref_images_url": refs},
        {"obj_or_bg": ["obj", "obj", "bg", "bogus", "bg"]},
    )
    assert parse(wire).references == (
        Reference(IMG, OBJ),
        Reference(IMG2, OBJ),
        Reference("http://a/3.png", BG),
    )


def test_obj_or_bg_defaults_and_single_bg() -> None:
    one = body({"function": "image_reference", "ref_images_url": [IMG]})
    assert parse(one).references == (Reference(IMG, OBJ),)
    bg = body({"function": "image_reference", "ref_images_url": [IMG]}, {"obj_or_bg": ["bg"]})
    assert parse(bg).references == (Reference(IMG, BG),)


@pytest.mark.parametrize("function", ["video_repainting", "video_edit"])
def test_repainting_and_edit_keep_only_first_reference(function: str) -> None:
    wire = body(
        {"function": function, "video_url": VIDEO, "mask_image_url": MASK},
        {"control_condition": "depth"},
    )
    wire["input"]["ref_images_url"] = [IMG, "ftp://dropped"]
    assert parse(wire).references == (Reference(IMG, OBJ),)
    wire["input"]["ref_images_url"] = []
    assert parse(wire).references == ()


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        ("1280*720", (1280, 720)),
        ("720*1280", (720, 1280)),
        ("960*960", (960, 960)),
        ("832*1088", (832, 1088)),
        ("1088*832", (1088, 832)),
        (None, (1280, 720)),
    ],
)
def test_sizes(size: str | None, expected: tuple[int, int]) -> None:
    wire = body(
        {"function": "video_edit", "video_url": VIDEO, "mask_image_url": MASK}, {"size": size}
    )
    assert parse(wire).size == expected
