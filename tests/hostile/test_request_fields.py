"""Hostile values in every request field: the create body (envelope, `input`, `parameters`),
the list query, task ids in paths and the create headers.

Each class is generated over every field that can carry it (text fields x unstorable strings,
number fields x overflowing literals, integer fields x out-of-range literals, ...), so a field
added without going through the shared readers shows up here. Every case must be a
DashScope-shaped 4xx with the contract's literal message, and the app must serve a valid create
afterwards.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.test_validation import BASE_INPUT, EDIT, EXT, IR, OUT, REPAINT, req
from tests.support.hostile import (
    BODY_INVALID,
    CREATE_PATH,
    KEY_A,
    app_client,
    assert_error,
    assert_healthy,
    auth,
    hostile_settings,
    invalid,
)
from vace_server.api.request_values import NUMBER_FIELDS
from vace_server.api.validation import (
    MAX_NEGATIVE_PROMPT_CHARS,
    SEED_MAX,
    parse_create_request,
)
from vace_server.api.wire_fields import OUTPAINT_SIDES
from vace_server.api.wire_media import MAX_URL_CHARS
from vace_server.api.wire_values import INT32_MAX

RAW = "__raw_literal__"  # replaced by a JSON literal after serialisation
MODEL_NOT_EXIST = "Model not exist."


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    # One app for the whole corpus: each case also proves the earlier ones left it healthy.
    with app_client(hostile_settings(tmp_path_factory.mktemp("fields"))) as c:
        yield c


def post_raw(client: TestClient, body: bytes, headers: dict[str, str] | None = None) -> Any:
    return client.post(
        CREATE_PATH,
        content=body,
        headers={**auth(), "Content-Type": "application/json", **(headers or {})},
    )


def with_literal(body: dict[str, Any], literal: str) -> bytes:
    """`body` serialised (ASCII, so lone surrogates become `\\ud800` escapes), with the RAW
    placeholder replaced by `literal` verbatim (numbers JSON can write but Python can't hold)."""
    return json.dumps(body).replace(json.dumps(RAW), literal).encode()


# ---------------------------------------------------------------- text fields
# Strings JSON can carry that no database can store (or that PostgreSQL refuses).
UNSTORABLE = ["a\ud800", "\udfff", "\udc00\udbff", "a\x00b", "\x00"]
# (function, where, field, is a list of URLs) for every free-text field a function reads.
TEXT_FIELDS: list[tuple[str, str, bool]] = [
    *((f, "prompt", False) for f in BASE_INPUT),
    *((f, "negative_prompt", False) for f in BASE_INPUT),
    (IR, "ref_images_url", True),
    (REPAINT, "video_url", False),
    (REPAINT, "ref_images_url", True),
    (EDIT, "video_url", False),
    (EDIT, "ref_images_url", True),
    (EDIT, "mask_image_url", False),
    *((EXT, f, False) for f in ("first_frame_url", "last_frame_url", "first_clip_url")),
    (EXT, "last_clip_url", False),
    (EXT, "video_url", False),
    (OUT, "video_url", False),
]


def _text_cases() -> Iterator[Any]:
    for function, field, is_list in TEXT_FIELDS:
        for i, bad in enumerate(UNSTORABLE):
            value = bad if field.endswith("prompt") else f"http://127.0.0.1:9/x{bad}.png"
            yield pytest.param(
                function, field, [value] if is_list else value, id=f"{function}-{field}-{i}"
            )


@pytest.mark.parametrize(("function", "field", "value"), list(_text_cases()))
def test_unstorable_text_is_a_400_naming_the_field(
    client: TestClient, function: str, field: str, value: Any
) -> None:
    body = json.dumps(req(function, {field: value})).encode()
    assert b"\\u" in body  # really sent as JSON escapes
    assert_error(post_raw(client, body), 400, "InvalidParameter", invalid(f"input.{field}"))
    assert_healthy(client)


def test_surrogate_as_raw_utf8_bytes_is_caught_too(client: TestClient) -> None:
    # json.loads decodes bytes with "surrogatepass": CESU-style bytes become a lone surrogate.
    body = json.dumps(req(IR, {"prompt": "PLACEHOLDER"})).encode()
    body = body.replace(b"PLACEHOLDER", b"a\xed\xa0\x80")
    assert_error(post_raw(client, body), 400, "InvalidParameter", invalid("input.prompt"))
    assert_healthy(client)


def test_unstorable_text_in_an_ignored_key_is_ignored(client: TestClient) -> None:
    # Keys the function does not read are neither read nor validated, nor stored
    # (docs/contract.md §6).
    body = req(IR, {"mask_image_url": "\ud800", "unknown": "\x00"}, {"strength": "\udfff"})
    r = post_raw(client, json.dumps(body).encode())
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("field", ["video_url", "mask_image_url"])
def test_a_url_over_the_length_cap_is_a_400(client: TestClient, field: str) -> None:
    url = "http://127.0.0.1:9/"
    longest = url + "a" * (MAX_URL_CHARS - len(url))
    fine = req(EDIT, {field: longest})
    assert post_raw(client, json.dumps(fine).encode()).status_code == 200
    over = req(EDIT, {field: longest + "a"})
    assert_error(
        post_raw(client, json.dumps(over).encode()),
        400,
        "InvalidParameter",
        invalid(f"input.{field}"),
    )
    assert_healthy(client)


def test_negative_prompt_is_cut_like_the_prompt() -> None:
    long_text = "n" * (MAX_NEGATIVE_PROMPT_CHARS + 500)
    body = req(IR, {"negative_prompt": long_text, "prompt": "p" * 2000})
    spec = parse_create_request(json.dumps(body).encode(), oss_resolve=False, draw_seed=lambda: 1)
    assert spec.negative_prompt == "n" * MAX_NEGATIVE_PROMPT_CHARS
    assert len(spec.prompt) == 800


def test_a_long_unstorable_negative_prompt_is_refused_even_past_the_cut(
    client: TestClient,
) -> None:
    text = "n" * MAX_NEGATIVE_PROMPT_CHARS + "\ud800"
    r = post_raw(client, json.dumps(req(IR, {"negative_prompt": text})).encode())
    assert_error(r, 400, "InvalidParameter", invalid("input.negative_prompt"))


# ---------------------------------------------------------------- numbers
# Which function reads each number field; must cover the validator's whole table.
NUMBER_FUNCTION = {
    "strength": REPAINT,
    "expand_ratio": EDIT,
    **{f"{side}_scale": OUT for side in OUTPAINT_SIDES},
}
HUGE = "1" + "0" * 400  # a valid JSON integer; float() of it raises OverflowError
NUMBER_LITERALS = [HUGE, "-" + HUGE, "1e400", "-1e400", "1e309", '"0.5"', "true", "[]", "{}"]
NOT_JSON = ["NaN", "Infinity", "-Infinity"]  # Python's json would take them; JSON does not


def test_number_table_is_covered() -> None:
    assert set(NUMBER_FUNCTION) == set(NUMBER_FIELDS)


def _number_cases() -> Iterator[Any]:
    for field, function in NUMBER_FUNCTION.items():
        bounds = NUMBER_FIELDS[field]
        below, above = repr(bounds.low - 0.001), repr(bounds.high + 0.001)
        for i, literal in enumerate([*NUMBER_LITERALS, below, above]):
            yield pytest.param(
                function, field, literal, invalid(f"parameters.{field}"), id=f"{field}-{i}"
            )
        for literal in NOT_JSON:
            yield pytest.param(function, field, literal, BODY_INVALID, id=f"{field}-{literal}")


@pytest.mark.parametrize(("function", "field", "literal", "message"), list(_number_cases()))
def test_numbers_out_of_float_range_or_of_the_wrong_type(
    client: TestClient, function: str, field: str, literal: str, message: str
) -> None:
    body = with_literal(req(function, params={field: RAW}), literal)
    assert_error(post_raw(client, body), 400, "InvalidParameter", message)
    assert_healthy(client)


# ---------------------------------------------------------------- integers
INT_COMMON = [HUGE, "-" + HUGE, "9223372036854775808", "1e400", "1.5", '"1"', "true", "[1]"]
# (function, where, field, extra out-of-range literals)
INT_FIELDS = [
    (IR, "parameters", "seed", ["-1", str(SEED_MAX + 1)]),
    (EDIT, "input", "mask_frame_id", ["0", "-1", str(INT32_MAX + 1)]),
    (IR, "parameters", "duration", ["4", "6", "5.5", "-5"]),
]


def _int_cases() -> Iterator[Any]:
    for function, where, field, extra in INT_FIELDS:
        for i, literal in enumerate([*INT_COMMON, *extra]):
            yield pytest.param(function, where, field, literal, id=f"{field}-{i}")


@pytest.mark.parametrize(("function", "where", "field", "literal"), list(_int_cases()))
def test_integers_out_of_range_or_of_the_wrong_type(
    client: TestClient, function: str, where: str, field: str, literal: str
) -> None:
    change = {field: RAW}
    body = req(function, change) if where == "input" else req(function, params=change)
    r = post_raw(client, with_literal(body, literal))
    assert_error(r, 400, "InvalidParameter", invalid(f"{where}.{field}"))
    assert_healthy(client)


def test_an_integer_of_thousands_of_digits_is_a_bad_body(client: TestClient) -> None:
    # Python refuses to convert integers over 4300 digits; that is a bad body, not a 500.
    body = with_literal(req(IR, params={"seed": RAW}), "1" + "0" * 5000)
    assert_error(post_raw(client, body), 400, "InvalidParameter", BODY_INVALID)
    assert_healthy(client)


# ---------------------------------------------------------------- body structure and types
VALID = json.dumps(req(IR)).encode()
DEEP = b'{"model":"wanx2.1-vace-plus","input":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
STRUCTURE_CASES = [
    ("empty", b"", BODY_INVALID),
    ("array", b"[]", BODY_INVALID),
    ("string", b'"x"', BODY_INVALID),
    ("number", b"1", BODY_INVALID),
    ("null", b"null", BODY_INVALID),
    ("truncated", VALID[:-3], BODY_INVALID),
    ("trailing-garbage", VALID + b"x", BODY_INVALID),
    ("two-objects", VALID + VALID, BODY_INVALID),
    ("invalid-utf8", VALID.replace(b'"p"', b'"\xff"'), BODY_INVALID),
    ("overlong-nul", VALID.replace(b'"p"', b'"\xc0\x80"'), BODY_INVALID),
    ("deep-nesting", DEEP, BODY_INVALID),
    ("duplicate-top-key", VALID[:-1] + b', "model": "other"}', BODY_INVALID),
    (
        "duplicate-nested-key",
        VALID.replace(b'"prompt": "p"', b'"prompt": "p", "prompt": "q"'),
        BODY_INVALID,
    ),
    ("nan-top", VALID[:-1] + b', "x": NaN}', BODY_INVALID),
    ("model-int", json.dumps({**req(IR), "model": 1}).encode(), MODEL_NOT_EXIST),
    (
        "model-list",
        json.dumps({**req(IR), "model": ["wanx2.1-vace-plus"]}).encode(),
        MODEL_NOT_EXIST,
    ),
    (
        "model-nul",
        json.dumps({**req(IR), "model": "wanx2.1-vace-plus\x00"}).encode(),
        MODEL_NOT_EXIST,
    ),
    ("model-surrogate", json.dumps({**req(IR), "model": "\ud800"}).encode(), MODEL_NOT_EXIST),
]


@pytest.mark.parametrize(
    ("body", "message"), [pytest.param(b, m, id=i) for i, b, m in STRUCTURE_CASES]
)
def test_bodies_that_are_not_one_valid_object(
    client: TestClient, body: bytes, message: str
) -> None:
    assert_error(post_raw(client, body), 400, "InvalidParameter", message)
    assert_healthy(client)


WRONG_TYPES: list[Any] = [1, 1.5, True, "x", [], [1], {"a": 1}]


def _type_cases() -> Iterator[Any]:
    for i, value in enumerate(WRONG_TYPES):
        if not isinstance(value, dict):
            yield pytest.param({"input": value}, "BadRequest.IllegalInput", None, id=f"input-{i}")
            yield pytest.param(
                {"parameters": value}, "InvalidParameter", invalid("parameters"), id=f"params-{i}"
            )
        for field in ("function", "prompt", "negative_prompt"):
            if isinstance(value, str) and field != "function":
                continue
            yield pytest.param(
                {"input": {**req(IR)["input"], field: value}},
                "InvalidParameter",
                invalid(f"input.{field}"),
                id=f"{field}-{i}",
            )
        for field in ("obj_or_bg", "size", "prompt_extend", "watermark"):
            if isinstance(value, bool) and field in ("prompt_extend", "watermark"):
                continue
            message = invalid(f"parameters.{field}")
            if field == "obj_or_bg" and value == []:
                message = "ref_images_url and obj_or_bg must be the same length."
            yield pytest.param(
                {"parameters": {**req(IR)["parameters"], field: value}},
                "InvalidParameter",
                message,
                id=f"{field}-{i}",
            )


@pytest.mark.parametrize(("override", "code", "message"), list(_type_cases()))
def test_wrong_json_types_at_every_level(
    client: TestClient, override: dict[str, Any], code: str, message: str | None
) -> None:
    body = {**req(IR), **override}
    assert_error(post_raw(client, json.dumps(body).encode()), 400, code, message)
    assert_healthy(client)


# ---------------------------------------------------------------- create headers
HEADER_CASES = [
    ("async-missing", {"X-DashScope-Async": ""}, 403, "AccessDenied"),
    ("async-latin1", {"X-DashScope-Async": "enabl\xe9"}, 403, "AccessDenied"),
    ("async-long", {"X-DashScope-Async": "enable" * 2000}, 403, "AccessDenied"),
    ("callback-empty", {"X-Vace-Callback-Url": ""}, 400, "InvalidParameter"),
    ("callback-scheme", {"X-Vace-Callback-Url": "ftp://127.0.0.1/x"}, 400, "InvalidParameter"),
    ("callback-text", {"X-Vace-Callback-Url": "not a url"}, 400, "InvalidParameter"),
    ("callback-port", {"X-Vace-Callback-Url": "http://127.0.0.1:99999/"}, 400, "InvalidParameter"),
]


@pytest.mark.parametrize(
    ("headers", "status", "code"), [pytest.param(h, s, c, id=i) for i, h, s, c in HEADER_CASES]
)
def test_bad_create_headers(
    client: TestClient, headers: dict[str, str], status: int, code: str
) -> None:
    raw = {k: v.encode("latin-1") for k, v in headers.items()}
    r = client.post(CREATE_PATH, content=VALID, headers={**auth(), **raw})  # type: ignore[arg-type,dict-item]
    body = assert_error(r, status, code)
    if code == "InvalidParameter":
        assert body["message"] == invalid("X-Vace-Callback-Url")
    assert_healthy(client)


# ---------------------------------------------------------------- list query
LIST_CASES = [
    *(("page_no", v) for v in ["0", "-1", "9223372036854775807", "9" * 30, "2147483648"]),
    *(("page_no", v) for v in ["1.0", "1e3", "+1", " 1", "1_0", "\uff11", "0x10", "abc", "1\x00"]),
    *(("page_size", v) for v in ["0", "101", "-5", "9223372036854775808", "10.0", "\u0661"]),
    *(("start_time", v) for v in ["99991231235959", "00010101000000", "19691231235959"]),
    *(("start_time", v) for v in ["20240230000000", "20241301000000", "20240101240000"]),
    *(("start_time", v) for v in ["20240101000060", "2024010100000", "202401010000000"]),
    *(("start_time", v) for v in ["2024-01-01 00:00", "2024010100000\uff10", "+2024010100000"]),
    *(("end_time", v) for v in ["99991231235959", "00010101000000", "20240229250000", "\x00"]),
    *(("status", v) for v in ["pending", "DONE", "\x00", "SUCCEEDED\x00", "status"]),
    *(("task_id", v) for v in ["a\x00b", "x" * 257]),
    *(("model_name", v) for v in ["wanx2.1-vace-plus\x00", "m" * 300]),
    *(("api_key_id", v) for v in ["\x00", "k" * 1000]),
]


@pytest.mark.parametrize(("name", "value"), LIST_CASES)
def test_list_parameters_out_of_range(client: TestClient, name: str, value: str) -> None:
    r = client.get("/api/v1/tasks", params={name: value}, headers=auth(KEY_A))
    assert_error(r, 400, "InvalidParameter", invalid(name))
    assert_healthy(client)


def test_list_range_edges_are_accepted(client: TestClient) -> None:
    for params in (
        {"page_no": "2147483647", "page_size": "100"},
        {"start_time": "19700101000000"},
        {"start_time": "99981231235959"},
        {"end_time": "99981231235959"},
        {"end_time": "19700102000000"},
        {"start_time": "20240229000000", "end_time": "20240301000000"},
    ):
        r = client.get("/api/v1/tasks", params=params, headers=auth(KEY_A))
        assert r.status_code == 200, (params, r.text)
        assert r.json()["data"] == []


def test_list_range_over_a_day_across_the_year_bound(client: TestClient) -> None:
    r = client.get(
        "/api/v1/tasks",
        params={"start_time": "99981231000000", "end_time": "99981231235959"},
        headers=auth(KEY_A),
    )
    assert r.status_code == 200, r.text


# ---------------------------------------------------------------- task ids in paths
ODD_IDS = ["a%00b", "%ED%A0%80", "%FF%FE", "x" * 200, "%C0%80", "..%5C..%5Cx", "%20"]


@pytest.mark.parametrize("task_id", ODD_IDS)
def test_odd_task_ids_are_unknown_tasks(client: TestClient, task_id: str) -> None:
    r = client.get(f"/api/v1/tasks/{task_id}", headers=auth(KEY_A))
    assert r.status_code == 200, r.text
    assert r.json()["output"]["task_status"] == "UNKNOWN"
    r = client.post(f"/api/v1/tasks/{task_id}/cancel", headers=auth(KEY_A))
    assert_error(r, 400, "UnsupportedOperation")
    assert_healthy(client)


OSS_BODY = json.dumps(req(IR, {"ref_images_url": ["oss://dashscope-instant/a/b.png"]})).encode()
OSS_WITHOUT_RESOLVE = (
    "The provided URL does not appear to be valid. Ensure it is correctly formatted. "
    "An oss:// URL (from the upload flow) needs the header "
    "`X-DashScope-OssResourceResolve: enable`."
)


@pytest.mark.parametrize("value", ["", "disable", "enabl\xe9", "enable\xa0", "enable" * 1000])
def test_odd_oss_resolve_headers_do_not_resolve(client: TestClient, value: str) -> None:
    headers = {**auth(), "X-DashScope-OssResourceResolve": value.encode("latin-1")}
    r = client.post(CREATE_PATH, content=OSS_BODY, headers=headers)  # type: ignore[arg-type]
    assert_error(r, 400, "InvalidParameter", OSS_WITHOUT_RESOLVE)
    assert_healthy(client)
