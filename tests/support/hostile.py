"""Shared pieces of the hostile-input corpora (tests/hostile/): the in-process app they attack,
the DashScope error shape every refusal must have, and the health check after each case."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from fastapi.testclient import TestClient

from tests.api.conftest import KEY_A, KEY_A2, KEY_B, auth
from tests.support.responses import HttpResponse
from vace_server.api.app import create_app
from vace_server.settings import Settings

__all__ = ["KEY_A", "KEY_A2", "KEY_B", "auth"]

CREATE_PATH = "/api/v1/services/aigc/video-generation/video-synthesis"
MODEL = "wanx2.1-vace-plus"
ERROR_KEYS = {"code", "message", "request_id"}


def hostile_settings(tmp_path: Path, **overrides: Any) -> Settings:
    """The tests/api settings: three keys over two accounts, no workers, no rate limits."""
    values: dict[str, Any] = {
        "data_dir": tmp_path / "data",
        "api_keys": f"{KEY_A}=team-a,{KEY_A2}=team-a,{KEY_B}=team-b",
        "workers": 0,
        "public_base_url": "http://testserver",
        **overrides,
    }
    return Settings(**values)


@contextmanager
def app_client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield client


def valid_body() -> dict[str, Any]:
    """A create body every validator accepts (no download happens without a worker)."""
    return {
        "model": MODEL,
        "input": {
            "function": "image_reference",
            "prompt": "a cat",
            "ref_images_url": ["http://127.0.0.1:9/cat.png"],
        },
        "parameters": {"obj_or_bg": ["obj"]},
    }


def assert_error(
    response: HttpResponse, status: int, code: str, message: str | None = None
) -> dict[str, Any]:
    """The response is a DashScope error: exactly {code, message, request_id}, all strings."""
    assert response.status_code == status, (response.status_code, response.text[:500])
    body: dict[str, Any] = response.json()
    assert set(body) == ERROR_KEYS, body
    assert all(isinstance(body[k], str) and body[k] for k in ERROR_KEYS), body
    assert body["code"] == code, body
    if message is not None:
        assert body["message"] == message, body
    assert response.headers.get("content-type", "").startswith("application/json")
    return body


def assert_healthy(client: TestClient | httpx.Client, key: str = KEY_A) -> None:
    """After a hostile request: /health answers and a valid create is still accepted."""
    health = client.get("/health")
    assert health.status_code == 200, health.text
    created = client.post(CREATE_PATH, json=valid_body(), headers=auth(key))
    assert created.status_code == 200, created.text
    assert created.json()["output"]["task_status"] == "PENDING"


# What the bad-value message of a closed-set field lists after the contract's sentence, written
# out here (not read from the server's tables) so a changed set shows up as a failing test.
ALLOWED_VALUES: dict[str, str] = {
    "input.function": (
        "image_reference, video_repainting, video_edit, video_extension, video_outpainting"
    ),
    "parameters.size": "1280*720, 720*1280, 960*960, 832*1088, 1088*832",
    "parameters.mask_type": "tracking, fixed",
    "parameters.expand_mode": "hull, bbox, original",
    "parameters.obj_or_bg": "a list of obj / bg, one per image, at most one bg",
}
CONTROL_VALUES: dict[str, str] = {
    "video_repainting": "posebodyface, posebody, depth, scribble",
    "video_edit": "posebodyface, depth",
    "video_extension": "posebodyface, depth",
}


def invalid(field: str, function: str | None = None) -> str:
    """The contract's literal bad-value message (docs/contract.md §3, §8.1), then for a field
    with a closed set of values the allowed ones (`function` picks the control conditions)."""
    message = (
        f"Required parameter({field}) missing or invalid, please check the request parameters."
    )
    if field == "parameters.control_condition":
        assert function is not None, "the control conditions depend on the function"
        return f"{message} Allowed values: {CONTROL_VALUES[function]}."
    if field in ALLOWED_VALUES:
        return f"{message} Allowed values: {ALLOWED_VALUES[field]}."
    return message


BODY_INVALID = "Required body invalid, please check the request body format."
