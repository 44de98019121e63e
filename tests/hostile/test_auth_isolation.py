"""Auth and account isolation: odd Authorization headers on every authenticated route, and
another account's tasks being invisible (query, list, filters, cancel) while a second key of
the same account sees them."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.support.hostile import (
    CREATE_PATH,
    KEY_A,
    KEY_A2,
    KEY_B,
    app_client,
    assert_error,
    assert_healthy,
    auth,
    hostile_settings,
    valid_body,
)

NO_KEY = "No API-key provided."
BAD_KEY = "Invalid API-key provided."
ROUTES = [
    ("POST", CREATE_PATH),
    ("GET", "/api/v1/tasks"),
    ("GET", "/api/v1/tasks/some-task"),
    ("POST", "/api/v1/tasks/some-task/cancel"),
    ("GET", "/api/v1/uploads?action=getPolicy&model=wanx2.1-vace-plus"),
]
# (id, raw Authorization header value or None for absent, expected message)
AUTH_CASES: list[tuple[str, bytes | None, str]] = [
    ("absent", None, NO_KEY),
    ("empty", b"", NO_KEY),
    ("blank", b"   ", NO_KEY),
    ("bearer-only", b"Bearer", NO_KEY),
    ("bearer-space", b"Bearer    ", NO_KEY),
    ("basic", b"Basic " + base64.b64encode(KEY_A.encode() + b":x"), NO_KEY),
    ("other-scheme", b"Token " + KEY_A.encode(), NO_KEY),
    ("wrong", b"Bearer sk-nope", BAD_KEY),
    ("prefix-of-a-key", b"Bearer " + KEY_A2[:-1].encode(), BAD_KEY),
    ("key-plus-suffix", b"Bearer " + KEY_A.encode() + b"x", BAD_KEY),
    ("two-keys", b"Bearer " + KEY_A.encode() + b" " + KEY_B.encode(), BAD_KEY),
    ("comma-list", b"Bearer " + KEY_A.encode() + b"," + KEY_B.encode(), BAD_KEY),
    ("key=account", b"Bearer " + KEY_A.encode() + b"=team-b", BAD_KEY),
    ("latin1", b"Bearer sk-\xe9\xff", BAD_KEY),
    ("utf8-bytes", "Bearer sk-\u4e2d".encode(), BAD_KEY),
    ("very-long", b"Bearer " + b"k" * 8192, BAD_KEY),
    ("tab-inside", b"Bearer\tsk-account-a", BAD_KEY),
]


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    with app_client(hostile_settings(tmp_path_factory.mktemp("auth"))) as c:
        yield c


def call(client: TestClient, method: str, path: str, headers: dict[str, Any]) -> Any:
    if method == "POST" and path == CREATE_PATH:
        return client.post(path, json=valid_body(), headers=headers)
    return client.request(method, path, headers=headers)


def task_count(client: TestClient) -> int:
    r = client.get("/api/v1/tasks", params={"page_size": 100}, headers=auth(KEY_A))
    total: int = r.json()["total"]
    return total


@pytest.mark.parametrize(("method", "path"), ROUTES)
@pytest.mark.parametrize(
    ("header", "message"), [pytest.param(h, m, id=i) for i, h, m in AUTH_CASES]
)
def test_odd_authorization_is_a_401_everywhere(
    client: TestClient, method: str, path: str, header: bytes | None, message: str
) -> None:
    before = task_count(client)
    headers: dict[str, Any] = {"X-DashScope-Async": "enable"}
    if header is not None:
        headers["Authorization"] = header
    assert_error(call(client, method, path, headers), 401, "InvalidApiKey", message)
    assert task_count(client) == before  # a refused create never creates a task
    assert_healthy(client)


def test_auth_is_checked_before_the_body(client: TestClient) -> None:
    r = client.post(CREATE_PATH, content=b"{not json", headers=auth("sk-nope"))
    assert_error(r, 401, "InvalidApiKey", BAD_KEY)


@pytest.mark.parametrize("header", ["bearer", "BEARER", "  Bearer"])
def test_the_scheme_is_case_insensitive(client: TestClient, header: str) -> None:
    r = client.get("/api/v1/tasks", headers={"Authorization": f"{header} {KEY_A} "})
    assert r.status_code == 200, r.text


def _create(client: TestClient, key: str) -> str:
    r = client.post(CREATE_PATH, json=valid_body(), headers=auth(key))
    assert r.status_code == 200, r.text
    task_id: str = r.json()["output"]["task_id"]
    return task_id


def _listed(client: TestClient, key: str, **params: str) -> list[str]:
    r = client.get("/api/v1/tasks", params={"page_size": "100", **params}, headers=auth(key))
    assert r.status_code == 200, r.text
    return [entry["task_id"] for entry in r.json()["data"]]


def test_another_accounts_task_is_invisible(client: TestClient) -> None:
    task_a = _create(client, KEY_A)
    task_b = _create(client, KEY_B)

    # Query: unknown to the other account, visible to every key of the owner.
    r = client.get(f"/api/v1/tasks/{task_a}", headers=auth(KEY_B))
    assert r.json()["output"] == {"task_id": task_a, "task_status": "UNKNOWN"}
    for key in (KEY_A, KEY_A2):
        r = client.get(f"/api/v1/tasks/{task_a}", headers=auth(key))
        assert r.json()["output"]["task_status"] == "PENDING"

    # List: never the other account's tasks, not even when filtering for them by id.
    assert task_a not in _listed(client, KEY_B)
    assert task_b in _listed(client, KEY_B)
    assert _listed(client, KEY_B, task_id=task_a) == []
    assert task_a in _listed(client, KEY_A2, task_id=task_a)
    assert task_b not in _listed(client, KEY_A)

    # Cancel: the other account gets what an unknown task gets, and the task is untouched.
    r = client.post(f"/api/v1/tasks/{task_a}/cancel", headers=auth(KEY_B))
    assert_error(r, 400, "UnsupportedOperation")
    r = client.get(f"/api/v1/tasks/{task_a}", headers=auth(KEY_A))
    assert r.json()["output"]["task_status"] == "PENDING"
    # ... while a second key of the owning account may cancel it.
    r = client.post(f"/api/v1/tasks/{task_a}/cancel", headers=auth(KEY_A2))
    assert r.status_code == 200, r.text
    assert_healthy(client, KEY_B)


def test_api_key_id_filter_cannot_reach_another_account(client: TestClient) -> None:
    task_b = _create(client, KEY_B)
    r = client.get(f"/api/v1/tasks/{task_b}", headers=auth(KEY_B))
    assert r.status_code == 200
    listed = client.get("/api/v1/tasks", params={"task_id": task_b}, headers=auth(KEY_B))
    key_id = listed.json()["data"][0]["api_key_id"]
    assert _listed(client, KEY_A, api_key_id=key_id) == []
    assert task_b in _listed(client, KEY_B, api_key_id=key_id)
