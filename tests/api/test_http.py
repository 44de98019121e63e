"""The HTTP surface: auth, headers, shapes of create / query / list / cancel / download."""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from tests.api.conftest import KEY_A, KEY_A2, KEY_B, auth
from vace_server.api.context import AppContext
from vace_server.tasks.store import Claim

CREATE = "/api/v1/services/aigc/video-generation/video-synthesis"
TIME = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3}$")
BODY = {
    "model": "wanx2.1-vace-plus",
    "input": {
        "function": "image_reference",
        "prompt": "a cat",
        "ref_images_url": ["http://example.com/cat.png"],
    },
    "parameters": {"prompt_extend": True, "seed": 5},
}


def _create(client: TestClient, key: str = KEY_A) -> str:
    r = client.post(CREATE, json=BODY, headers=auth(key))
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"output", "request_id"}
    assert body["output"]["task_status"] == "PENDING"
    uuid.UUID(body["output"]["task_id"])
    task_id: str = body["output"]["task_id"]
    return task_id


def _error(r: Any, status: int, code: str, message: str) -> None:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert set(body) == {"code", "message", "request_id"}
    assert (body["code"], body["message"]) == (code, message)


def test_missing_and_wrong_key(client: TestClient) -> None:
    _error(
        client.post(CREATE, json=BODY, headers={"X-DashScope-Async": "enable"}),
        401,
        "InvalidApiKey",
        "No API-key provided.",
    )
    _error(
        client.post(CREATE, json=BODY, headers=auth("sk-nope")),
        401,
        "InvalidApiKey",
        "Invalid API-key provided.",
    )
    _error(client.get("/api/v1/tasks/x"), 401, "InvalidApiKey", "No API-key provided.")


def test_async_header_required_and_checked_after_auth(client: TestClient) -> None:
    _error(
        client.post(CREATE, json=BODY, headers=auth(async_header=False)),
        403,
        "AccessDenied",
        "current user api does not support synchronous calls. Send the header "
        "`X-DashScope-Async: enable`: tasks run asynchronously (poll GET "
        "/api/v1/tasks/<task_id> for the result).",
    )
    _error(
        client.post(CREATE, content=b"{", headers={"X-DashScope-Async": "enable"}),
        401,
        "InvalidApiKey",
        "No API-key provided.",
    )


def test_bad_body_is_checked_after_headers(client: TestClient) -> None:
    _error(
        client.post(CREATE, content=b"{not json", headers=auth(async_header=False)),
        403,
        "AccessDenied",
        "current user api does not support synchronous calls. Send the header "
        "`X-DashScope-Async: enable`: tasks run asynchronously (poll GET "
        "/api/v1/tasks/<task_id> for the result).",
    )
    _error(
        client.post(CREATE, content=b"{not json", headers=auth()),
        400,
        "InvalidParameter",
        "Required body invalid, please check the request body format.",
    )


def test_rejected_create_creates_no_task(client: TestClient, context: AppContext) -> None:
    client.post(CREATE, json={"model": "nope", "input": {}}, headers=auth())
    assert context.store.count_by_status() == {}


def test_query_pending_shape_and_accounts(client: TestClient) -> None:
    task_id = _create(client)
    r = client.get(f"/api/v1/tasks/{task_id}", headers=auth(KEY_A2))  # same account, other key
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"request_id", "output"}
    assert set(body["output"]) == {"task_id", "task_status", "submit_time", "progress"}
    assert body["output"]["progress"] == {"stage": "queued", "queue_position": 1}
    assert TIME.match(body["output"]["submit_time"])
    other = client.get(f"/api/v1/tasks/{task_id}", headers=auth(KEY_B)).json()
    assert other["output"] == {"task_id": task_id, "task_status": "UNKNOWN"}
    unknown = client.get("/api/v1/tasks/does-not-exist", headers=auth()).json()
    assert unknown["output"] == {"task_id": "does-not-exist", "task_status": "UNKNOWN"}


def _claim(context: AppContext) -> Claim:
    claim = context.store.claim("test-worker")
    assert claim is not None
    return claim


def test_usage_names_the_preset_steps_and_guidance(
    client: TestClient, context: AppContext, tmp_path: Path
) -> None:
    task_id = _create(client)
    recorded = context.store.get(task_id)
    assert recorded is not None and recorded.spec.engine is not None
    assert recorded.spec.engine.preset == "quality"  # VACE_PRESET at submission
    assert recorded.spec.engine.guidance_scale is None  # the preset's: not pinned at submission
    key = f"2026-01-01/{task_id}-secret.mp4"
    video = tmp_path / "v.mp4"
    video.write_bytes(b"\x00\x00\x00\x18ftypmp42")
    context.storage.put_file(key, video)
    effective = {
        "preset": "fast",
        "steps": 4,
        "guidance_scale": 1.0,
        "flow_shift": 5.0,
        "seed": 1234,
    }
    claim = _claim(context)
    context.store.succeed(
        claim, output_key=key, output_seconds=5.0, actual_prompt=None, effective=effective
    )
    body = client.get(f"/api/v1/tasks/{task_id}", headers=auth()).json()
    assert body["usage"] == {
        "video_duration": 5,
        "video_ratio": "standard",
        "video_count": 1,
        "preset": "fast",
        "steps": 4,
        "guidance_scale": 1.0,
        "seed": 1234,
    }


def test_running_failed_succeeded_shapes(
    client: TestClient, context: AppContext, tmp_path: Path
) -> None:
    running_id = _create(client)
    _claim(context)
    out = client.get(f"/api/v1/tasks/{running_id}", headers=auth()).json()["output"]
    assert set(out) == {"task_id", "task_status", "submit_time", "scheduled_time"}
    assert out["task_status"] == "RUNNING"

    failed_id = _create(client)
    context.store.fail(
        _claim(context), code="InvalidURL", message="Invalid URL provided in your request."
    )
    body = client.get(f"/api/v1/tasks/{failed_id}", headers=auth()).json()
    assert "usage" not in body
    assert body["output"]["code"] == "InvalidURL"
    assert set(body["output"]) >= {"submit_time", "scheduled_time", "end_time", "message"}

    ok_id = _create(client)
    video = tmp_path / "v.mp4"
    video.write_bytes(b"\x00\x00\x00\x18ftypmp42")
    key = f"2026-01-01/{ok_id}-secret.mp4"
    context.storage.put_file(key, video)
    context.store.succeed(
        _claim(context),
        output_key=key,
        output_seconds=5.0,
        actual_prompt="a cat, detailed",
        effective={},
    )
    body = client.get(f"/api/v1/tasks/{ok_id}", headers=auth()).json()
    out = body["output"]
    assert out["task_status"] == "SUCCEEDED"
    assert out["orig_prompt"] == "a cat" and out["actual_prompt"] == "a cat, detailed"
    assert all(TIME.match(out[k]) for k in ("submit_time", "scheduled_time", "end_time"))
    assert body["usage"] == {"video_duration": 5, "video_ratio": "standard", "video_count": 1}
    url = out["video_url"]
    assert url.startswith("http://testserver/api/v1/outputs/")
    download = client.get(url)
    assert download.status_code == 200 and download.content == video.read_bytes()
    tampered = url.replace("signature=", "signature=0")
    _error(
        client.get(tampered),
        403,
        "AccessDenied",
        "Request has expired or its signature does not match.",
    )


def test_cancel_pending_only(client: TestClient, context: AppContext) -> None:
    task_id = _create(client)
    message = "Failed to cancel the task, please confirm if the task is in PENDING status."
    _error(
        client.post(f"/api/v1/tasks/{task_id}/cancel", headers=auth(KEY_B)),
        400,
        "UnsupportedOperation",
        message,
    )
    r = client.post(f"/api/v1/tasks/{task_id}/cancel", headers=auth())
    assert r.status_code == 200 and set(r.json()) == {"request_id"}
    out = client.get(f"/api/v1/tasks/{task_id}", headers=auth()).json()["output"]
    assert out["task_status"] == "CANCELED"
    assert set(out) == {"task_id", "task_status", "submit_time", "end_time"}
    _error(
        client.post(f"/api/v1/tasks/{task_id}/cancel", headers=auth()),
        400,
        "UnsupportedOperation",
        message,
    )
    _error(
        client.post("/api/v1/tasks/nope/cancel", headers=auth()),
        400,
        "UnsupportedOperation",
        message,
    )


def test_list_with_and_without_trailing_slash(client: TestClient, context: AppContext) -> None:
    ids = [_create(client) for _ in range(3)]
    _create(client, KEY_B)
    _claim(context)
    for path in ("/api/v1/tasks", "/api/v1/tasks/"):
        r = client.get(path, params={"page_no": 1, "page_size": 2}, headers=auth())
        assert r.status_code == 200
        body = r.json()
        assert (body["total"], body["total_page"], body["page_no"], body["page_size"]) == (
            3,
            2,
            1,
            2,
        )
        assert [e["task_id"] for e in body["data"]] == ids[::-1][:2]
        entry = body["data"][0]
        assert isinstance(entry["gmt_create"], int)
        assert entry["user_api_unique_key"] == (
            "apikey:v1:aigc:video-generation:video-synthesis:wanx2.1-vace-plus"
        )
    running = client.get("/api/v1/tasks", params={"status": "RUNNING"}, headers=auth()).json()
    assert [e["task_id"] for e in running["data"]] == [ids[0]]
    assert isinstance(running["data"][0]["start_time"], int)


def test_list_rejects_bad_times(client: TestClient) -> None:
    _error(
        client.get("/api/v1/tasks", params={"start_time": "yesterday"}, headers=auth()),
        400,
        "InvalidParameter",
        "Required parameter(start_time) missing or invalid, please check the request parameters.",
    )
    _error(
        client.get(
            "/api/v1/tasks",
            params={"start_time": "20250101000000", "end_time": "20250103000000"},
            headers=auth(),
        ),
        400,
        "InvalidParameter",
        "Required parameter(end_time) missing or invalid, please check the request parameters.",
    )


def test_unknown_route_and_method_are_json(client: TestClient) -> None:
    r = client.get("/api/v1/nothing-here", headers=auth())
    assert r.status_code == 404 and r.json()["code"] == "NotFound"
    r = client.delete("/api/v1/tasks/abc", headers=auth())
    assert r.status_code == 405 and r.json()["code"] == "MethodNotAllowed"


def test_health(client: TestClient) -> None:
    body = client.get("/health").json()
    assert body["status"] == "ok" and body["workers"] == []


def test_cancel_running_is_a_request_and_progress_is_shown(
    client: TestClient, context: AppContext
) -> None:
    task_id = _create(client)
    claim = _claim(context)
    context.store.set_progress(claim, {"stage": "denoising", "step": 3, "total_steps": 10})
    out = client.get(f"/api/v1/tasks/{task_id}", headers=auth()).json()["output"]
    assert out["progress"] == {"stage": "denoising", "step": 3, "total_steps": 10}
    r = client.post(f"/api/v1/tasks/{task_id}/cancel", headers=auth())
    assert r.status_code == 200
    assert context.store.cancel_requested(claim)
    context.store.finish_canceled(claim)
    out = client.get(f"/api/v1/tasks/{task_id}", headers=auth()).json()["output"]
    assert out["task_status"] == "CANCELED" and "progress" not in out
    # it ran before it was stopped: when it started shows (a PENDING cancel has none, above)
    assert set(out) == {"task_id", "task_status", "submit_time", "scheduled_time", "end_time"}
