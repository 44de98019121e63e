"""Synchronous create-request validation (docs/contract.md §3-§6, §8.1, §11.2, §11.3).

`BAD_REQUESTS` is a plain, importable table: every row carries everything needed to replay it
(through `parse_create_request` here, or through the HTTP app elsewhere).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.support.hostile import invalid
from vace_server.api.validation import parse_create_request
from vace_server.errors import ServiceError
from vace_server.tasks.spec import TaskSpec

MODEL = "wanx2.1-vace-plus"
IMG = "http://a/1.png"
IMG2 = "http://a/2.png"
VIDEO = "http://a/v.mp4"
MASK = "http://a/m.png"
CLIP = "http://a/c.mp4"
OSS_VIDEO = "oss://dashscope-instant/a/b.mp4"

BODY_INVALID = "Required body invalid, please check the request body format."
MODEL_NOT_EXIST = "Model not exist."
LENGTH = "ref_images_url and obj_or_bg must be the same length."
OSS_NO_RESOLVE = (
    "The provided URL does not appear to be valid. Ensure it is correctly formatted. "
    "An oss:// URL (from the upload flow) needs the header "
    "`X-DashScope-OssResourceResolve: enable`."
)
EMPTY_MODEL = ("BadRequest.EmptyModel", 'Required parameter "model" missing from request.')
EMPTY_INPUT = ("BadRequest.EmptyInput", "Required input parameter missing from request.")
ILLEGAL_INPUT = ("BadRequest.IllegalInput", "The input parameter requires json format.")

IR, REPAINT, EDIT, EXT, OUT = (
    "image_reference",
    "video_repainting",
    "video_edit",
    "video_extension",
    "video_outpainting",
)
# A minimal valid request per function; rows below change one thing at a time.
BASE_INPUT: dict[str, dict[str, Any]] = {
    IR: {"ref_images_url": [IMG]},
    REPAINT: {"video_url": VIDEO},
    EDIT: {"video_url": VIDEO, "mask_image_url": MASK},
    EXT: {"first_clip_url": CLIP},
    OUT: {"video_url": VIDEO},
}
EXT_FIELDS = ("first_frame_url", "last_frame_url", "first_clip_url", "last_clip_url")
CONTROL = "parameters.control_condition"
BASE_PARAMS: dict[str, dict[str, Any]] = {REPAINT: {"control_condition": "depth"}}


def required(field: str) -> str:
    return f"Field required: {field}"


def bad(field: str, function: str | None = None) -> str:
    return invalid(field, function)


def req(
    function: str,
    input: dict[str, Any] | None = None,
    params: dict[str, Any] | None = None,
    drop: tuple[str, ...] = (),
) -> dict[str, Any]:
    """A valid body for `function`: base keys in `drop` removed, then `input`/`params` merged."""
    inp = {"function": function, "prompt": "p", **BASE_INPUT[function]}
    par = dict(BASE_PARAMS.get(function, {}))
    for key in drop:
        inp.pop(key, None)
        par.pop(key, None)
    inp.update(input or {})
    par.update(params or {})
    return {"model": MODEL, "input": inp, "parameters": par}


Row = tuple[str, "dict[str, Any] | bytes", bool, int, str, str]


def row(
    id: str, body: dict[str, Any] | bytes, message: str, *, oss: bool = False, code: str = ""
) -> Row:
    return (id, body, oss, 400, code or "InvalidParameter", message)


def bad_values(function: str, where: str, field: str, values: list[Any]) -> list[Row]:
    """One row per bad value of `where.field` ("input" or "parameters")."""
    rows = []
    for i, value in enumerate(values):
        change = {field: value}
        body = req(function, change) if where == "input" else req(function, params=change)
        rows.append(row(f"{function}-{field}-bad{i}", body, bad(f"{where}.{field}", function)))
    return rows


BAD_URLS: list[Any] = [
    "",
    " ",
    123,
    ["http://a/x"],
    "data:image/png;base64,iVBORw0KGgo=",
    "ftp://a/x",
    "file:///tmp/x",
    "/tmp/x",
    "a/x",
    "http://",
    "http:///x",
    "http://a:99999/x",
    "http://a/图片.png",
    "http://a/x，y",
    "http://a/x y",
    " http://a/x",
    "https://a/x\n",
    "oss://",
    "oss:///x",
]
# §11.2 capture A: the 1.x SDK's "video-synthesis" placeholder, VACE fields in parameters.
A = {
    "model": MODEL,
    "parameters": {
        "ref_images_url": [IMG, IMG2],
        "obj_or_bg": ["obj", "bg"],
        "size": "1280*720",
        "prompt_extend": True,
    },
    "input": {"prompt": "hello", "extend_prompt": True, "function": "video-synthesis"},
}
# §11.2 capture C; valid only with `X-DashScope-OssResourceResolve: enable`.
C = {
    "model": MODEL,
    "parameters": {"mask_type": "tracking", "expand_ratio": 0.05},
    "input": {
        "prompt": "p",
        "extend_prompt": True,
        "function": "video_edit",
        "video_url": OSS_VIDEO,
        "mask_image_url": "oss://dashscope-instant/a/m.png",
        "mask_frame_id": 1,
    },
}

BAD_REQUESTS: list[Row] = [
    # ---- body, envelope (§3, §8.1)
    row("json-garbage", b"{not json", BODY_INVALID),
    row("json-empty", b"", BODY_INVALID),
    row("json-truncated", b'{"model": "wanx2.1-vace-plus"', BODY_INVALID),
    row("json-array", b"[]", BODY_INVALID),
    row("json-string", b'"x"', BODY_INVALID),
    row("json-null", b"null", BODY_INVALID),
    row("json-nan", b'{"model": "wanx2.1-vace-plus", "input": {}, "x": NaN}', BODY_INVALID),
    row("json-infinity", b'{"model": "wanx2.1-vace-plus", "x": -Infinity}', BODY_INVALID),
    row("json-bad-utf8", b'{"model": "\xff"}', BODY_INVALID),
    row("model-missing", {"input": req(IR)["input"]}, EMPTY_MODEL[1], code=EMPTY_MODEL[0]),
    row("model-null", {**req(IR), "model": None}, EMPTY_MODEL[1], code=EMPTY_MODEL[0]),
    row("model-empty", {**req(IR), "model": ""}, EMPTY_MODEL[1], code=EMPTY_MODEL[0]),
    row("model-unknown", {**req(IR), "model": "wan2.2-vace-plus"}, MODEL_NOT_EXIST),
    row("model-case", {**req(IR), "model": "WANX2.1-VACE-PLUS"}, MODEL_NOT_EXIST),
    row("model-number", {**req(IR), "model": 21}, MODEL_NOT_EXIST),
    row("model-before-input", {"model": "nope"}, MODEL_NOT_EXIST),
    row("input-missing", {"model": MODEL}, EMPTY_INPUT[1], code=EMPTY_INPUT[0]),
    row("input-null", {"model": MODEL, "input": None}, EMPTY_INPUT[1], code=EMPTY_INPUT[0]),
    row("input-list", {"model": MODEL, "input": []}, ILLEGAL_INPUT[1], code=ILLEGAL_INPUT[0]),
    row("input-string", {"model": MODEL, "input": "{}"}, ILLEGAL_INPUT[1], code=ILLEGAL_INPUT[0]),
    row("parameters-list", {**req(IR), "parameters": []}, bad("parameters")),
    row("parameters-string", {**req(IR), "parameters": "{}"}, bad("parameters")),
    # ---- input.function, 1.x SDK placeholder (§3, §11.2)
    row("function-missing", req(IR, drop=("function",)), required("input.function")),
    row("function-null", req(IR, {"function": None}), required("input.function")),
    row("function-empty", req(IR, {"function": ""}), required("input.function")),
    row("function-sdk1", req(IR, {"function": "video-synthesis"}), required("input.function")),
    row("function-unknown", req(IR, {"function": "text2video"}), bad("input.function")),
    row("function-case", req(IR, {"function": "Image_Reference"}), bad("input.function")),
    row("function-number", req(IR, {"function": 1}), bad("input.function")),
    row("sdk-body-A", A, required("input.function")),
    # ---- prompts
    row("prompt-missing", req(EDIT, drop=("prompt",)), required("input.prompt")),
    row("prompt-null", req(EXT, {"prompt": None}), required("input.prompt")),
    row("prompt-empty", req(OUT, {"prompt": ""}), required("input.prompt")),
    row("prompt-blank", req(REPAINT, {"prompt": " \n"}), required("input.prompt")),
    row("prompt-number", req(IR, {"prompt": 5}), bad("input.prompt")),
    row("prompt-list", req(IR, {"prompt": ["a"]}), bad("input.prompt")),
    row("negative-prompt-number", req(IR, {"negative_prompt": 1}), bad("input.negative_prompt")),
    # ---- common parameters, every function
    *[
        r
        for f in (IR, REPAINT, EDIT, EXT, OUT)
        for r in bad_values(f, "parameters", "prompt_extend", ["true", 1, 0])
        + bad_values(f, "parameters", "watermark", ["false", 0])
        + bad_values(f, "parameters", "seed", [-1, 2147483648, 1.5, "42", True, [1]])
    ],
    *[
        r
        for f in (IR, EDIT, EXT, OUT)
        for r in bad_values(f, "parameters", "duration", [10, 4, 0, "5", 5.5, True])
    ],
    # ---- media URL syntax (§4), one field per function at least
    *bad_values(IR, "input", "ref_images_url", ["http://a/1.png", [], {"url": IMG}]),
    *[
        row(f"ir-ref-url-{i}", req(IR, {"ref_images_url": [u]}), bad("input.ref_images_url"))
        for i, u in enumerate(BAD_URLS)
    ],
    row("ir-ref-null-entry", req(IR, {"ref_images_url": [None]}), bad("input.ref_images_url")),
    row(
        "ir-ref-second-bad",
        req(IR, {"ref_images_url": [IMG, "ftp://x"]}, {"obj_or_bg": ["obj", "obj"]}),
        bad("input.ref_images_url"),
    ),
    *bad_values(REPAINT, "input", "video_url", BAD_URLS),
    *bad_values(REPAINT, "input", "ref_images_url", ["http://a/1.png", ["ftp://a"], [""]]),
    *bad_values(EDIT, "input", "video_url", BAD_URLS),
    *bad_values(EDIT, "input", "mask_image_url", BAD_URLS),
    *bad_values(EDIT, "input", "ref_images_url", [IMG, ["data:image/png;base64,AA"]]),
    *[
        row(
            f"edit-mask-video-{i}",
            req(EDIT, {"mask_image_url": None, "mask_video_url": u}),
            bad("input.mask_video_url"),
        )
        for i, u in enumerate(BAD_URLS)
    ],
    *[
        r
        for field in EXT_FIELDS
        for r in bad_values(EXT, "input", field, ["", "data:,x", "ftp://a", "http://a/视频.mp4"])
    ],
    *bad_values(EXT, "input", "video_url", ["", "http://a/视频.mp4"]),
    *bad_values(OUT, "input", "video_url", BAD_URLS),
    # ---- oss:// without the resolve header (§4, §10)
    row("oss-ir", req(IR, {"ref_images_url": ["oss://d/a/1.png"]}), OSS_NO_RESOLVE),
    row("oss-repaint", req(REPAINT, {"video_url": OSS_VIDEO}), OSS_NO_RESOLVE),
    row("oss-edit-mask", req(EDIT, {"mask_image_url": "oss://d/m.png"}), OSS_NO_RESOLVE),
    row("oss-ext-last-clip", req(EXT, {"last_clip_url": "oss://d/c.mp4"}), OSS_NO_RESOLVE),
    row("oss-out", req(OUT, {"video_url": OSS_VIDEO}), OSS_NO_RESOLVE),
    row(
        "oss-params-fallback",
        req(OUT, params={"video_url": OSS_VIDEO}, drop=("video_url",)),
        OSS_NO_RESOLVE,
    ),
    row("sdk-body-C-no-header", C, OSS_NO_RESOLVE),
    row(
        "oss-empty-key-with-header",
        req(OUT, {"video_url": "oss://"}),
        bad("input.video_url"),
        oss=True,
    ),
    row(
        "oss-chinese-with-header",
        req(OUT, {"video_url": "oss://d/视频.mp4"}),
        bad("input.video_url"),
        oss=True,
    ),
    # ---- image_reference (§5.1)
    row("ir-refs-missing", req(IR, drop=("ref_images_url",)), required("input.ref_images_url")),
    row("ir-refs-null", req(IR, {"ref_images_url": None}), required("input.ref_images_url")),
    row("ir-obj-or-bg-absent-2-images", req(IR, {"ref_images_url": [IMG, IMG2]}), LENGTH),
    row("ir-obj-or-bg-absent-4-images", req(IR, {"ref_images_url": [IMG] * 4}), LENGTH),
    row(
        "ir-obj-or-bg-short",
        req(IR, {"ref_images_url": [IMG, IMG2]}, {"obj_or_bg": ["obj"]}),
        LENGTH,
    ),
    row("ir-obj-or-bg-long", req(IR, params={"obj_or_bg": ["obj", "bg"]}), LENGTH),
    row("ir-obj-or-bg-empty", req(IR, params={"obj_or_bg": []}), LENGTH),
    row(
        "ir-obj-or-bg-4-images-2-roles",
        req(IR, {"ref_images_url": [IMG] * 4}, {"obj_or_bg": ["obj", "bg"]}),
        LENGTH,
    ),
    row(
        "ir-obj-or-bg-two-bg",
        req(IR, {"ref_images_url": [IMG, IMG2]}, {"obj_or_bg": ["bg", "bg"]}),
        bad("parameters.obj_or_bg"),
    ),
    row(
        "ir-obj-or-bg-two-bg-of-3",
        req(IR, {"ref_images_url": [IMG] * 3}, {"obj_or_bg": ["bg", "obj", "bg"]}),
        bad("parameters.obj_or_bg"),
    ),
    *bad_values(IR, "parameters", "obj_or_bg", ["obj", ["OBJ"], ["subject"], [None], [1], {}]),
    *bad_values(
        IR, "parameters", "size", ["1280x720", "1920*1080", "1280*720 ", 1280, ["1280*720"], ""]
    ),
    # ---- video_repainting (§5.2)
    row("repaint-video-missing", req(REPAINT, drop=("video_url",)), required("input.video_url")),
    row("repaint-control-missing", req(REPAINT, drop=("control_condition",)), required(CONTROL)),
    row("repaint-control-empty", req(REPAINT, params={"control_condition": ""}), required(CONTROL)),
    row(
        "repaint-parameters-missing",
        {"model": MODEL, "input": req(REPAINT)["input"]},
        required(CONTROL),
    ),
    *bad_values(REPAINT, "parameters", "control_condition", ["canny", "Depth", ["depth"], 1]),
    *bad_values(REPAINT, "parameters", "strength", [1.5, -0.1, "1", True, [1]]),
    # ---- video_edit (§5.3)
    row("edit-video-missing", req(EDIT, drop=("video_url",)), required("input.video_url")),
    row("edit-no-mask", req(EDIT, drop=("mask_image_url",)), required("input.mask_image_url")),
    row(
        "edit-null-masks",
        req(EDIT, {"mask_image_url": None, "mask_video_url": None}),
        required("input.mask_image_url"),
    ),
    *bad_values(EDIT, "input", "mask_frame_id", [0, -1, 1.5, "1", True, [1]]),
    *bad_values(EDIT, "parameters", "control_condition", ["posebody", "scribble", "x", 0]),
    *bad_values(EDIT, "parameters", "mask_type", ["static", "Tracking", 1, ""]),
    *bad_values(EDIT, "parameters", "expand_mode", ["circle", "HULL", 1, ""]),
    *bad_values(EDIT, "parameters", "expand_ratio", [1.5, -0.01, "0.05", False]),
    *bad_values(EDIT, "parameters", "size", ["1280*721", "720P", 960]),
    # ---- video_extension (§5.4)
    row("ext-nothing", req(EXT, drop=("first_clip_url",)), required("input.first_clip_url")),
    row("ext-all-null", req(EXT, dict.fromkeys(EXT_FIELDS)), required("input.first_clip_url")),
    row("ext-video-without-control", req(EXT, {"video_url": VIDEO}), required(CONTROL)),
    row(
        "ext-video-empty-control",
        req(EXT, {"video_url": VIDEO}, {"control_condition": ""}),
        required(CONTROL),
    ),
    row(
        "ext-control-posebody",
        req(EXT, {"video_url": VIDEO}, {"control_condition": "posebody"}),
        bad(CONTROL, EXT),
    ),
    row(
        "ext-control-scribble-no-video",
        req(EXT, params={"control_condition": "scribble"}),
        bad(CONTROL, EXT),
    ),
    # ---- video_outpainting (§5.5)
    row("out-video-missing", req(OUT, drop=("video_url",)), required("input.video_url")),
    *[
        r
        for side in ("top", "bottom", "left", "right")
        for r in bad_values(OUT, "parameters", f"{side}_scale", [0.5, 0.99, 2.01, "1.5", True])
    ],
    # ---- 1.x fallback: media fields read from parameters, named input.<field>
    row(
        "fallback-video-bad",
        req(OUT, params={"video_url": "ftp://a"}, drop=("video_url",)),
        bad("input.video_url"),
    ),
    row(
        "fallback-refs-string",
        req(IR, params={"ref_images_url": IMG}, drop=("ref_images_url",)),
        bad("input.ref_images_url"),
    ),
    row(
        "fallback-mask-frame-id", req(EDIT, params={"mask_frame_id": 0}), bad("input.mask_frame_id")
    ),
    row(
        "fallback-first-frame",
        req(EXT, params={"first_frame_url": "data:,x"}),
        bad("input.first_frame_url"),
    ),
]


def encode(body: dict[str, Any] | bytes) -> bytes:
    return body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()


def parse(body: dict[str, Any] | bytes, *, oss: bool = False, seed: int = 7) -> TaskSpec:
    return parse_create_request(encode(body), oss_resolve=oss, draw_seed=lambda: seed)


def test_bad_request_ids_are_unique() -> None:
    ids = [r[0] for r in BAD_REQUESTS]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize(
    ("body", "oss_resolve", "status", "code", "message"),
    [r[1:] for r in BAD_REQUESTS],
    ids=[r[0] for r in BAD_REQUESTS],
)
def test_bad_request(
    body: dict[str, Any] | bytes, oss_resolve: bool, status: int, code: str, message: str
) -> None:
    with pytest.raises(ServiceError) as caught:
        parse(body, oss=oss_resolve)
    assert (caught.value.status, caught.value.code, caught.value.message) == (status, code, message)
