"""Property: whatever JSON value sits in whichever field of a valid create body, the validator
either refuses it with a 400 DashScope error or returns a task spec that any database can
store (UTF-8-encodable, no NUL) and that survives its own JSON round trip. Never another
exception, which the API would turn into a 500."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.api.test_validation import req
from tests.hostile.fuzz_document import COMMON_PARAMETERS, function_inputs
from vace_server.api.validation import parse_create_request
from vace_server.errors import ServiceError
from vace_server.tasks.spec import TaskSpec

# The keys each function reads, in `input` and in `parameters` (the fuzzing document's table).
FUNCTION_KEYS = {
    function.value: (
        sorted({"function", "prompt", "negative_prompt", *inputs["properties"]}),
        sorted({*parameters["properties"], *COMMON_PARAMETERS}),
    )
    for function, (inputs, parameters) in function_inputs().items()
}
CODES = {"InvalidParameter", "BadRequest.EmptyInput", "BadRequest.EmptyModel"}
CODES |= {"BadRequest.IllegalInput"}

# Text over the whole code space, with the characters no database stores made common.
UNSTORABLE = st.sampled_from(["\x00", "\ud800", "\udbff", "\udc00", "\udfff"])
PLAIN_TEXT = st.text(st.characters(codec=None, exclude_categories=()), max_size=8)
ANY_TEXT = PLAIN_TEXT | st.builds(lambda a, bad, b: a + bad + b, PLAIN_TEXT, UNSTORABLE, PLAIN_TEXT)
# Numbers at the edges of int32, int64 and float, made common.
EDGES = st.sampled_from([2**31, -(2**31) - 1, 2**63, -(2**63) - 1, 10**400, -(10**400), 1e308])
SCALARS = (
    st.none()
    | st.booleans()
    | EDGES
    | st.integers(min_value=-(10**400), max_value=10**400)
    | st.integers(min_value=-(2**64), max_value=2**64)
    | st.floats(allow_nan=False, allow_infinity=True)
    | ANY_TEXT
    | st.sampled_from(["http://127.0.0.1:9/a.png", "oss://x/y.png", "depth", "obj", "bg", ""])
)
URLS = ANY_TEXT.map(lambda t: f"http://127.0.0.1:9/{t}.png")
JSON_VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(ANY_TEXT, inner, max_size=3),
    max_leaves=8,
)
# Plain text and URLs carrying it are drawn often: they are what reaches the database.
VALUES = ANY_TEXT | URLS | URLS.map(lambda u: [u]) | SCALARS | JSON_VALUES


def check(body: bytes, *, oss: bool) -> None:
    try:
        spec = parse_create_request(body, oss_resolve=oss, draw_seed=lambda: 3)
    except ServiceError as exc:
        assert exc.status == 400 and exc.code in CODES, (exc.code, exc.message)
        return
    stored = spec.to_json()
    assert "\x00" not in stored
    stored.encode("utf-8")  # raises on a lone surrogate
    assert TaskSpec.from_json(stored) == spec


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    function=st.sampled_from(sorted(FUNCTION_KEYS)),
    where=st.sampled_from([0, 1]),
    data=st.data(),
    value=VALUES,
    oss=st.booleans(),
)
def test_any_value_in_any_field_is_a_400_or_a_storable_spec(
    function: str, where: int, data: st.DataObject, value: Any, oss: bool
) -> None:
    key = data.draw(st.sampled_from(FUNCTION_KEYS[function][where]))
    body = req(function, {key: value}) if where == 0 else req(function, params={key: value})
    check(json.dumps(body).encode(), oss=oss)


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(envelope=st.dictionaries(st.sampled_from(["model", "input", "parameters"]), JSON_VALUES))
def test_any_envelope_is_a_400_or_a_storable_spec(envelope: dict[str, Any]) -> None:
    check(json.dumps(envelope).encode(), oss=False)


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(raw=st.binary(max_size=64) | st.text(max_size=64).map(str.encode))
def test_any_bytes_are_a_400_or_a_storable_spec(raw: bytes) -> None:
    check(raw, oss=False)
