"""Schema fuzzing of a live `vace-server serve` on loopback with schemathesis.

The document comes from the validator's own tables (fuzz_document.py). Every operation is
fuzzed with positive examples (requests the schema allows) and negative ones (requests that
break it), a bounded number each; every answer must be below 500 and every error a DashScope
body `{"code","message","request_id"}`. The totals are printed at the end (`-s` shows them).
Schemathesis' coverage phase adds its deterministic edge cases for every parameter. The same
server also shows that a kept-alive connection survives one error of every class.
"""

from __future__ import annotations

import http.client
import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.core.result import Ok

from tests.hostile.fuzz_document import CREATE_ROUTE as CREATE
from tests.hostile.fuzz_document import build_document
from tests.support.hostile import ERROR_KEYS, hostile_settings
from tests.support.live_server import API_KEY, LiveServer
from vace_server.api.app import create_app

# A live `serve` for the module, and many cases against it: minutes, not seconds.
pytestmark = pytest.mark.slow

SCHEMA = schemathesis.openapi.from_dict(build_document())
# Examples per (operation, mode); the create body gets the most, parameterless routes few.
BUDGET = {
    f"POST {CREATE}": 90,
    "GET /api/v1/tasks": 40,
}
DEFAULT_BUDGET = 20
NO_PARAMETERS = {"GET /health"}
TOTALS: Counter[str] = Counter()
PER_OPERATION: Counter[str] = Counter()
# `X-DashScope-Async` is not in the document: always sent, so negative cases break the body.
HEADERS = {"Authorization": f"Bearer {API_KEY}", "X-DashScope-Async": "enable"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    root = tmp_path_factory.mktemp("fuzz")
    live = LiveServer(root / "data", root / "server.log", VACE_WORKERS="0").start(timeout=120)
    try:
        yield live
    finally:
        live.stop()
        print(f"\nschema fuzzing: {dict(sorted(TOTALS.items()))}")
        for key, count in sorted(PER_OPERATION.items()):
            print(f"  {key}: {count}")


def _cases() -> list[Any]:
    params = []
    for result in SCHEMA.get_all_operations():
        assert isinstance(result, Ok), result  # the document builds every operation
        op = result.ok()
        label = f"{op.method.upper()} {op.path}"
        modes = [GenerationMode.POSITIVE]
        if label not in NO_PARAMETERS:
            modes.append(GenerationMode.NEGATIVE)
        for mode in modes:
            params.append(pytest.param(label, mode, id=f"{label}-{mode.value}"))
    return params


def check(response: schemathesis.Response, label: str) -> None:
    TOTALS["examples"] += 1
    TOTALS[f"{response.status_code // 100}xx"] += 1
    PER_OPERATION[f"{label} {response.status_code}"] += 1
    assert response.status_code < 500, (label, response.status_code, response.text[:300])
    if response.status_code >= 400:
        body = json.loads(response.content)
        assert set(body) == ERROR_KEYS, (label, body)
        assert all(isinstance(body[k], str) and body[k] for k in ERROR_KEYS), (label, body)


@pytest.mark.parametrize(("label", "mode"), _cases())
def test_no_5xx_and_every_error_is_dashscope_shaped(
    server: LiveServer, label: str, mode: GenerationMode
) -> None:
    method, path = label.split(" ", 1)
    operation = SCHEMA[path][method]
    session = requests.Session()  # one kept-alive connection per operation and mode

    @settings(
        max_examples=BUDGET.get(label, 5 if label in NO_PARAMETERS else DEFAULT_BUDGET),
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        case = data.draw(operation.as_strategy(generation_mode=mode))
        response = case.call(base_url=server.base_url, session=session, headers=HEADERS, timeout=30)
        check(response, label)

    run()
    session.close()
    assert requests.get(f"{server.base_url}/health", timeout=10).status_code == 200


@pytest.mark.parametrize("label", [p.values[0] for p in _cases() if p.values[1].is_positive])
def test_boundary_values_of_every_parameter(server: LiveServer, label: str) -> None:
    """Schemathesis' coverage phase: deterministic edge cases per parameter (minimum, maximum,
    one past each, wrong types, missing required fields, over-long strings, other methods)."""
    method, path = label.split(" ", 1)
    session = requests.Session()
    cases = SCHEMA.iter_coverage_cases(
        SCHEMA[path][method],
        generation_modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
        generation_config=SCHEMA.config.generation,
    )
    for case in cases:
        TOTALS["boundary examples"] += 1
        response = case.call(base_url=server.base_url, session=session, headers=HEADERS, timeout=30)
        check(response, label)
    session.close()


def test_the_document_covers_every_api_route(tmp_path: Path) -> None:
    # A route added to the app without a place in the fuzzing document fails here.
    app = create_app(hostile_settings(tmp_path))
    documented = set(build_document()["paths"])
    for route in app.routes:
        route_path = getattr(route, "path", "")
        if route_path.startswith(("/api/", "/health")):
            normalised = route_path.replace("{key:path}", "{key}").rstrip("/") or "/"
            assert normalised in documented, route_path


HUGE = "1" + "0" * 400
KEEP_ALIVE_CASES: list[tuple[str, str, bytes, dict[str, str], int]] = [
    ("GET", "/api/v1/tasks?page_no=9223372036854775807", b"", {}, 400),
    ("GET", "/api/v1/tasks?start_time=99991231235959", b"", {}, 400),
    ("GET", "/api/v1/tasks?end_time=00010101000000", b"", {}, 400),
    (
        "POST",
        CREATE,
        b'{"model":"wanx2.1-vace-plus","input":{"function":"video_repainting",'
        b'"prompt":"a","video_url":"http://127.0.0.1:9/v.mp4"},"parameters":{"control_condition":'
        b'"depth","strength":' + HUGE.encode() + b"}}",
        {},
        400,
    ),
    (
        "POST",
        CREATE,
        b'{"model":"wanx2.1-vace-plus","input":{"function":"image_reference",'
        b'"prompt":"a\\ud800","ref_images_url":["http://127.0.0.1:9/a.png"]}}',
        {},
        400,
    ),
    ("GET", "/api/v1/outputs/a/b.mp4?expires=99999999999999&signature=%C3%A9", b"", {}, 403),
    ("GET", "/api/v1/tasks/a%00b", b"", {}, 200),
    ("GET", "/api/v1/tasks", b"", {"Authorization": "Bearer nope"}, 401),
    ("POST", CREATE, b"{", {}, 400),
    ("GET", "/api/v1/nowhere", b"", {}, 404),
    ("DELETE", "/api/v1/tasks", b"", {}, 405),
    ("POST", "/api/v1/uploads/oss", b"x", {"Content-Type": "multipart/form-data"}, 400),
]


def test_a_kept_alive_connection_survives_every_error(server: LiveServer) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    base = {"Authorization": f"Bearer {API_KEY}", "X-DashScope-Async": "enable"}
    conn.request("GET", "/health")
    conn.getresponse().read()
    sock = conn.sock
    for method, target, body, headers, status in KEEP_ALIVE_CASES:
        conn.request(method, target, body=body or None, headers={**base, **headers})
        response = conn.getresponse()
        payload = response.read()
        assert response.status == status, (target, response.status, payload[:300])
        if status >= 400:
            assert set(json.loads(payload)) == ERROR_KEYS, payload
        assert not response.will_close, (target, response.getheaders())
        assert conn.sock is sock, target  # the same TCP connection, never reopened
    conn.close()
