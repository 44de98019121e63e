"""vace_server/api/openapi_document.py: what `/openapi.json` declares, and (schemathesis) that
the live answers of a real server on loopback match it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openapi_spec_validator import validate
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.api.conftest import KEY_A
from tests.support.thread_server import ThreadServer
from vace_server.api.app import create_app
from vace_server.api.context import AppContext
from vace_server.api.openapi_document import UndocumentedRoute, build_document
from vace_server.api.openapi_examples import CREATE_EXAMPLES
from vace_server.api.openapi_routes import CREATE_ROUTE, ROUTES
from vace_server.settings import Settings
from vace_server.tasks.spec import VaceFunction
from vace_server.tasks.store import Claim

ERROR_STATUSES = {"400", "401", "403", "404", "408", "409", "413", "429", "500", "503"}
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
# Examples per operation and mode, derandomized: a fixed, bounded run.
BUDGET = {f"POST {CREATE_ROUTE}": 30}
DEFAULT_BUDGET = 8
HEADERS = {"Authorization": f"Bearer {KEY_A}"}
# Without a worker, /ready answers its documented 503 by design: only that 5xx is expected.
EXPECTED_5XX = {"GET /ready"}


def _operations(doc: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in doc["paths"].items():
        for method, op in item.items():
            yield method, path, op


def test_the_document_is_valid_openapi(client: TestClient) -> None:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    validate(response.json())


def test_no_422_anywhere_and_every_route_declares_its_errors(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    text = json.dumps(doc)
    assert {(m, p) for m, p, _ in _operations(doc)} == set(ROUTES)
    assert "422" not in text and "HTTPValidationError" not in text
    for method, path, op in _operations(doc):
        errors = set(op["responses"]) - {"200"}
        assert errors and errors <= ERROR_STATUSES, (method, path, errors)
        for status in errors:
            schema = op["responses"][status]["content"]["application/json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/ErrorBody"}, (method, path)
    body = doc["components"]["schemas"]["ErrorBody"]
    assert set(body["required"]) == {"code", "message", "request_id"}


def test_the_create_body_is_discriminated_by_input_function(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    schemas = doc["components"]["schemas"]
    union = schemas["CreateRequest"]["oneOf"]
    functions = []
    for ref in union:
        variant = schemas[ref["$ref"].rsplit("/", 1)[1]]
        assert variant["properties"]["model"]["enum"] == ["wan2.1-vace-plus", "wanx2.1-vace-plus"]
        functions.extend(variant["properties"]["input"]["properties"]["function"]["enum"])
    assert functions == [f.value for f in VaceFunction]
    repainting = schemas["Create_video_repainting"]["properties"]["parameters"]
    assert repainting["required"] == ["control_condition"]
    size = schemas["Create_image_reference"]["properties"]["parameters"]["properties"]["size"]
    assert size["default"] == "1280*720" and "960*960" in size["enum"]
    create = doc["paths"][CREATE_ROUTE]["post"]
    content = create["requestBody"]["content"]["application/json"]
    assert content["schema"] == {"$ref": "#/components/schemas/CreateRequest"}
    assert set(content["examples"]) == {f.value for f in VaceFunction}
    headers = {p["name"]: p for p in create["parameters"] if p["in"] == "header"}
    assert headers["X-DashScope-Async"]["required"] is True
    assert {"X-DashScope-OssResourceResolve", "X-Vace-Callback-Url"} <= set(headers)


def test_the_security_scheme_and_who_needs_a_key(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    assert doc["components"]["securitySchemes"]["ApiKey"] == {
        **doc["components"]["securitySchemes"]["ApiKey"],
        "type": "http",
        "scheme": "bearer",
    }
    keyless = {p for _, p, op in _operations(doc) if op["security"] == []}
    assert keyless == {
        "/api/v1/uploads/oss",
        "/api/v1/outputs/{key}",
        "/health",
        "/ready",
        "/metrics",
    }
    assert "401" in doc["paths"]["/api/v1/tasks/{task_id}"]["get"]["responses"]


def test_real_media_types(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert set(paths["/metrics"]["get"]["responses"]["200"]["content"]) == {"text/plain"}
    download = paths["/api/v1/outputs/{key}"]["get"]["responses"]["200"]["content"]
    assert set(download) == {"video/mp4"}
    assert client.get("/metrics").headers["content-type"].startswith("text/plain")


def test_a_route_without_documentation_fails_the_build(settings: Settings) -> None:
    app = create_app(settings)

    @app.get("/api/v1/undocumented")
    def undocumented() -> dict[str, str]:
        return {}

    with pytest.raises(UndocumentedRoute, match="GET /api/v1/undocumented"):
        build_document(app, ["wanx2.1-vace-plus"])


def test_the_served_model_names_are_the_enum(tmp_path: Path) -> None:
    models = json.dumps({"tiny-a": {"model": "tiny", "aliases": ["tiny-a-alias"]}})
    settings = Settings(data_dir=tmp_path / "d", api_keys=KEY_A, workers=0, models=models)
    with TestClient(create_app(settings)) as client:
        doc = client.get("/openapi.json").json()
    policy = doc["paths"]["/api/v1/uploads"]["get"]["parameters"]
    assert next(p for p in policy if p["name"] == "model")["schema"]["enum"] == [
        "tiny-a",
        "tiny-a-alias",
    ]


# --- live answers against the document (schemathesis) ---------------------------------------


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ThreadServer, Any]]:
    root = tmp_path_factory.mktemp("openapi")
    app = create_app(
        Settings(
            data_dir=root / "data",
            api_keys=f"{KEY_A}=team-a",
            workers=0,
            public_base_url="http://127.0.0.1",
        )
    )
    with ThreadServer(app) as server:
        schema = schemathesis.openapi.from_url(f"{server.base_url}/openapi.json")
        yield server, schema


def _labels() -> list[Any]:
    # Every documented operation (test_no_422_anywhere... shows the app serves exactly these).
    cases = []
    for (method, path), doc in ROUTES.items():
        # Nothing to break in an operation without parameters or body: positive cases only.
        negative = [GenerationMode.NEGATIVE] if doc.parameters or doc.body else []
        for mode in (GenerationMode.POSITIVE, *negative):
            label = f"{method.upper()} {path}"
            cases.append(pytest.param(label, mode, id=f"{label}-{mode.value}"))
    return cases


@pytest.mark.parametrize(("label", "mode"), _labels())
def test_live_answers_match_the_document(
    live: tuple[ThreadServer, Any], label: str, mode: GenerationMode
) -> None:
    server, schema = live
    method, path = label.split(" ", 1)
    operation = schema[path][method]
    session = requests.Session()

    @settings(
        max_examples=BUDGET.get(label, DEFAULT_BUDGET),
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        case = data.draw(operation.as_strategy(generation_mode=mode))
        response = case.call(base_url=server.base_url, session=session, headers=HEADERS)
        case.validate_response(response, checks=checks)

    checks = CHECKS[1:] if label in EXPECTED_5XX else CHECKS
    run()
    session.close()


def test_every_official_example_is_accepted_and_answered_as_documented(
    live: tuple[ThreadServer, Any],
) -> None:
    server, schema = live
    create = schema[CREATE_ROUTE]["POST"]
    query = schema["/api/v1/tasks/{task_id}"]["GET"]
    for name, example in CREATE_EXAMPLES.items():
        case = create.Case(body=example["value"], headers={"X-DashScope-Async": "enable"})
        response = case.call(base_url=server.base_url, headers=HEADERS)
        assert response.status_code == 200, (name, response.text)
        case.validate_response(response, checks=CHECKS)
        task_id = response.json()["output"]["task_id"]
        polled = query.Case(path_parameters={"task_id": task_id})
        answer = polled.call(base_url=server.base_url, headers=HEADERS)
        assert answer.json()["output"]["task_status"] == "PENDING"
        polled.validate_response(answer, checks=CHECKS)


def _claim(context: AppContext) -> Claim:
    claim = context.store.claim("openapi-test-worker")
    assert claim is not None
    return claim


def test_every_task_state_is_answered_as_documented(
    client: TestClient, context: AppContext, tmp_path: Path
) -> None:
    """Query, list and download bodies of tasks in every state (made through the store, as a
    worker would), each checked against the document."""
    schema = schemathesis.openapi.from_dict(client.get("/openapi.json").json())
    example = CREATE_EXAMPLES["image_reference"]["value"]
    create_headers = {**HEADERS, "X-DashScope-Async": "enable"}

    def create() -> str:
        answer = client.post(CREATE_ROUTE, json=example, headers=create_headers)
        task_id: str = answer.json()["output"]["task_id"]
        return task_id

    # A claim takes the oldest PENDING task: each is created just before it is moved on.
    running = create()
    progress = {"stage": "denoising", "percent": 40, "step": 2, "total_steps": 4}
    context.store.set_progress(_claim(context), progress)
    failed = create()
    context.store.fail(_claim(context), code="InvalidURL", message="Invalid URL provided.")
    succeeded = create()
    key = f"2026-01-01/{succeeded}-secret.mp4"
    video = tmp_path / "v.mp4"
    video.write_bytes(b"\x00\x00\x00\x18ftypmp42")
    context.storage.put_file(key, video)
    effective = {"preset": "fast", "steps": 4, "seed": 7, "stage_ms": {"denoise": 12.5}}
    context.store.succeed(
        _claim(context), output_key=key, output_seconds=5.0, actual_prompt="p+", effective=effective
    )
    canceled = create()
    client.post(f"/api/v1/tasks/{canceled}/cancel", headers=HEADERS)
    pending = create()

    query = schema["/api/v1/tasks/{task_id}"]["GET"]
    statuses = {}
    for task_id in (running, failed, succeeded, canceled, pending, "no-such-task"):
        case = query.Case(path_parameters={"task_id": task_id}, headers=HEADERS)
        answer = client.get(f"/api/v1/tasks/{task_id}", headers=HEADERS)
        case.validate_response(answer, checks=CHECKS)
        statuses[task_id] = answer.json()["output"]["task_status"]
    assert list(statuses.values()) == [
        "RUNNING",
        "FAILED",
        "SUCCEEDED",
        "CANCELED",
        "PENDING",
        "UNKNOWN",
    ]
    running_output = client.get(f"/api/v1/tasks/{running}", headers=HEADERS).json()["output"]
    assert running_output["progress"]["stage"] == "denoising"
    listed = client.get("/api/v1/tasks", headers=HEADERS)
    assert listed.json()["total"] == 5
    schema["/api/v1/tasks"]["GET"].Case(headers=HEADERS).validate_response(listed, checks=CHECKS)
    url = client.get(f"/api/v1/tasks/{succeeded}", headers=HEADERS).json()["output"]["video_url"]
    download = client.get(url)
    assert download.headers["content-type"] == "video/mp4"
    query_params = dict(parse_qsl(urlsplit(url).query))
    case = schema["/api/v1/outputs/{key}"]["GET"].Case(
        path_parameters={"key": key}, query=query_params
    )
    case.validate_response(download, checks=CHECKS)
