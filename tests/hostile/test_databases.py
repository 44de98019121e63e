"""The text class against both databases: PostgreSQL refuses NUL in any text parameter and
neither database can store a lone surrogate, so every such value must be stopped at the API
(a 4xx) on SQLite and PostgreSQL alike, while any storable text, astral characters included,
round-trips unchanged."""

from __future__ import annotations

import json
from pathlib import Path

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
    valid_body,
)

UNSTORABLE = ["a\x00b", "a\ud800", "\udfff"]
PATH_IDS = ["a%00b", "%00", "x%00" * 20]


def test_unstorable_text_never_reaches_the_database(database_url: str, tmp_path: Path) -> None:
    with app_client(hostile_settings(tmp_path, database_url=database_url)) as client:
        for value in UNSTORABLE:
            for field in ("prompt", "negative_prompt"):
                body = valid_body()
                body["input"][field] = value
                r = client.post(CREATE_PATH, content=json.dumps(body), headers=auth(KEY_A))
                assert_error(r, 400, "InvalidParameter", invalid(f"input.{field}"))
            body = valid_body()
            body["input"]["ref_images_url"] = [f"http://127.0.0.1:9/{value}.png"]
            r = client.post(CREATE_PATH, content=json.dumps(body), headers=auth(KEY_A))
            assert_error(r, 400, "InvalidParameter", invalid("input.ref_images_url"))
        raw = json.dumps(valid_body()).replace('"a cat"', '"a\\u0000"').encode()
        r = client.post(CREATE_PATH, content=raw, headers=auth(KEY_A))
        assert_error(r, 400, "InvalidParameter", invalid("input.prompt"))
        r = client.post(CREATE_PATH, content=raw[:-1] + b',"x":1,"x":2}', headers=auth(KEY_A))
        assert_error(r, 400, "InvalidParameter", BODY_INVALID)

        for name in ("task_id", "model_name", "api_key_id"):
            r = client.get(f"/api/v1/tasks?{name}=a%00b", headers=auth(KEY_A))
            assert_error(r, 400, "InvalidParameter", invalid(name))
        for task_id in PATH_IDS:
            r = client.get(f"/api/v1/tasks/{task_id}", headers=auth(KEY_A))
            assert r.status_code == 200, r.text
            assert r.json()["output"]["task_status"] == "UNKNOWN"
            r = client.post(f"/api/v1/tasks/{task_id}/cancel", headers=auth(KEY_A))
            assert_error(r, 400, "UnsupportedOperation")
        assert_healthy(client)


def test_storable_text_round_trips(database_url: str, tmp_path: Path) -> None:
    text = "\U0001f431 \U0010ffff \u4e2d\u6587 \ufeff tab\tnewline\n\x01\x7f"
    with app_client(hostile_settings(tmp_path, database_url=database_url)) as client:
        body = valid_body()
        body["input"]["prompt"] = text
        body["input"]["negative_prompt"] = text
        r = client.post(CREATE_PATH, json=body, headers=auth(KEY_A))
        assert r.status_code == 200, r.text
        task_id = r.json()["output"]["task_id"]
        stored = client.app.state.ctx.store.get(task_id)  # type: ignore[attr-defined]
        assert stored.spec.prompt == text
        assert stored.spec.negative_prompt == text
        listed = client.get("/api/v1/tasks", params={"task_id": task_id}, headers=auth(KEY_A))
        assert [e["task_id"] for e in listed.json()["data"]] == [task_id]
