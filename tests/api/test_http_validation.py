"""The validation table replayed through the HTTP app: status, code and message on the wire,
and no task created by any rejected request."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import auth
from tests.api.test_validation import BAD_REQUESTS
from vace_server.api.context import AppContext

CREATE = "/api/v1/services/aigc/video-generation/video-synthesis"


def test_every_bad_request_is_rejected_on_the_wire(client: TestClient, context: AppContext) -> None:
    for row in BAD_REQUESTS:
        row_id, body, oss_resolve, status, code, message = row
        headers = auth()
        if oss_resolve:
            headers["X-DashScope-OssResourceResolve"] = "enable"
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        r = client.post(
            CREATE, content=raw, headers={**headers, "Content-Type": "application/json"}
        )
        got: dict[str, Any] = r.json()
        assert (r.status_code, got.get("code"), got.get("message")) == (status, code, message), (
            row_id
        )
        assert set(got) == {"code", "message", "request_id"}, row_id
    assert context.store.count_by_status() == {}


@pytest.mark.parametrize("content_type", ["application/json; charset=utf-8", "text/plain", None])
def test_content_type_does_not_matter(client: TestClient, content_type: str | None) -> None:
    body = {
        "model": "wanx2.1-vace-plus",
        "input": {
            "function": "image_reference",
            "prompt": "p",
            "ref_images_url": ["http://a/b.png"],
        },
    }
    headers = auth()
    if content_type:
        headers["Content-Type"] = content_type
    r = client.post(CREATE, content=json.dumps(body).encode(), headers=headers)
    assert r.status_code == 200
