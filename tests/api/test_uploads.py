"""The temporary upload flow over HTTP (docs/contract.md §10): getPolicy and the receiver."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import KEY_A, KEY_B, auth
from vace_server.api import routes_uploads
from vace_server.api.routes_uploads import UploadService
from vace_server.api.upload_policy import PolicySigner, UploadPolicy
from vace_server.settings import Settings

MODEL = "wanx2.1-vace-plus"
UPLOAD_PATH = "/api/v1/uploads/oss"


def get_policy(client: TestClient, key: str = KEY_A, model: str = MODEL) -> dict[str, Any]:
    r = client.get(
        "/api/v1/uploads",
        params={"action": "getPolicy", "model": model},
        headers=auth(key, async_header=False),
    )
    assert r.status_code == 200, r.text
    data: dict[str, Any] = r.json()["data"]
    return data


def form(policy: dict[str, Any], /, name: str = "cat.png", **override: str) -> dict[str, str]:
    """The fields the SDK sends (dashscope/utils/oss_utils.py), in its order."""
    fields = {
        "OSSAccessKeyId": policy["oss_access_key_id"],
        "Signature": policy["signature"],
        "policy": policy["policy"],
        "key": policy["upload_dir"] + "/" + name,
        "x-oss-object-acl": policy["x_oss_object_acl"],
        "x-oss-forbid-overwrite": policy["x_oss_forbid_overwrite"],
        "success_action_status": "200",
        "x-oss-content-type": "image/png",
    }
    fields.update(override)
    return fields


def upload(client: TestClient, fields: dict[str, str], data: bytes = b"PNGDATA") -> Any:
    return client.post(UPLOAD_PATH, data=fields, files={"file": ("cat.png", data, "image/png")})


def service(client: TestClient) -> UploadService:
    svc: UploadService = client.app.state.uploads  # type: ignore[attr-defined]
    return svc


def stored(settings: Settings, key: str) -> Path:
    return settings.store.data_dir / "uploads" / key


def assert_error(r: Any, status: int, code: str, message: str | None = None) -> None:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["code"] == code
    assert body["request_id"]
    if message is not None:
        assert body["message"] == message


# ---------------------------------------------------------------- getPolicy
def test_policy_has_the_documented_fields_and_types(client: TestClient) -> None:
    r = client.get("/api/v1/uploads?action=getPolicy&model=" + MODEL, headers=auth(KEY_A))
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"request_id", "data"}
    data = body["data"]
    assert set(data) == {
        "policy",
        "signature",
        "upload_dir",
        "upload_host",
        "expire_in_seconds",
        "max_file_size_mb",
        "capacity_limit_mb",
        "oss_access_key_id",
        "x_oss_object_acl",
        "x_oss_forbid_overwrite",
    }
    for name in ("policy", "signature", "upload_dir", "upload_host", "oss_access_key_id"):
        assert isinstance(data[name], str) and data[name]
    assert data["expire_in_seconds"] == 300
    assert data["max_file_size_mb"] == 100
    assert isinstance(data["capacity_limit_mb"], int)
    assert data["x_oss_object_acl"] == "private"
    assert data["x_oss_forbid_overwrite"] == "true"
    assert data["upload_host"] == "http://testserver/api/v1/uploads/oss"
    assert re.fullmatch(
        r"dashscope-instant/[0-9a-f]{32}/\d{4}-\d{2}-\d{2}/[0-9a-f]{32}", data["upload_dir"]
    )
    token = json.loads(base64.b64decode(data["policy"]))
    assert token["account"] == "team-a"
    assert token["model"] == MODEL
    assert token["upload_dir"] == data["upload_dir"]
    assert token["max_bytes"] == 100 * 1024 * 1024
    assert get_policy(client)["upload_dir"] != data["upload_dir"]  # unique per policy


def test_policy_normalises_the_model(client: TestClient) -> None:
    data = get_policy(client, model="wan2.1-vace-plus")
    assert json.loads(base64.b64decode(data["policy"]))["model"] == MODEL


def test_policy_needs_a_key(client: TestClient) -> None:
    r = client.get("/api/v1/uploads", params={"action": "getPolicy", "model": MODEL})
    assert_error(r, 401, "InvalidApiKey", "No API-key provided.")
    r = client.get(
        "/api/v1/uploads", params={"action": "getPolicy", "model": MODEL}, headers=auth("sk-x")
    )
    assert_error(r, 401, "InvalidApiKey", "Invalid API-key provided.")


@pytest.mark.parametrize("params", [{"action": "put"}, {}])
def test_policy_action_must_be_get_policy(client: TestClient, params: dict[str, str]) -> None:
    r = client.get("/api/v1/uploads", params={**params, "model": MODEL}, headers=auth())
    assert_error(
        r,
        400,
        "InvalidParameter",
        "Required parameter(action) missing or invalid, please check the request parameters.",
    )


def test_policy_model_must_exist(client: TestClient) -> None:
    r = client.get("/api/v1/uploads?action=getPolicy&model=qwen-vl-max", headers=auth())
    assert_error(r, 400, "InvalidParameter", "Model not exist.")
    r = client.get("/api/v1/uploads?action=getPolicy", headers=auth())
    assert_error(r, 400, "BadRequest.EmptyModel")


# ---------------------------------------------------------------- receiver
def test_upload_stores_the_file_bound_to_account_and_model(
    client: TestClient, settings: Settings
) -> None:
    policy = get_policy(client, model="wan2.1-vace-plus")
    fields = form(policy)
    r = upload(client, fields, b"\x89PNG...")  # no Authorization header
    assert r.status_code == 200, r.text
    assert r.content == b""
    path = stored(settings, fields["key"])
    assert path.read_bytes() == b"\x89PNG..."
    store = service(client).store
    assert store.resolve(fields["key"], account="team-a", model=MODEL) == path.resolve()
    assert store.resolve(fields["key"], account="team-b", model=MODEL) is None


def test_tampered_signature_or_policy_is_refused(client: TestClient, settings: Settings) -> None:
    policy = get_policy(client)
    other = get_policy(client, key=KEY_B)
    r = upload(client, form(policy, Signature=other["signature"]))
    assert_error(r, 403, "AccessDenied")
    assert "signature" in r.json()["message"]
    token = json.loads(base64.b64decode(policy["policy"]))
    token["account"] = "team-b"
    forged = base64.b64encode(json.dumps(token).encode()).decode()
    assert_error(upload(client, form(policy, policy=forged)), 403, "AccessDenied")
    # a policy of B with A's signature, and garbage
    assert_error(upload(client, form(policy, policy=other["policy"])), 403, "AccessDenied")
    assert_error(upload(client, form(policy, policy="!!", Signature="??")), 403, "AccessDenied")
    r = upload(client, form(policy, OSSAccessKeyId="LTAIsomeoneelse"))
    assert_error(r, 403, "AccessDenied")
    assert not (settings.store.data_dir / "uploads" / "dashscope-instant").exists()


def test_expired_policy_is_refused(client: TestClient) -> None:
    policy = get_policy(client)
    svc = service(client)
    issued = json.loads(base64.b64decode(policy["policy"]))["expires_ms"]
    svc.clock = lambda: issued - 1
    assert upload(client, form(policy, name="ok.png")).status_code == 200
    svc.clock = lambda: issued
    r = upload(client, form(policy, name="late.png"))
    assert_error(r, 403, "AccessDenied", "Invalid according to Policy: Policy expired.")


@pytest.mark.parametrize(
    "name", ["../escape.png", "..", ".", "a/b.png", "a\\b.png", "bad\x01.png", "x" * 256, ""]
)
def test_key_must_be_one_safe_name_under_upload_dir(
    client: TestClient, settings: Settings, name: str
) -> None:
    policy = get_policy(client)
    assert_error(upload(client, form(policy, name=name)), 403, "AccessDenied")
    assert not (settings.store.data_dir / "uploads" / "dashscope-instant").exists()


@pytest.mark.parametrize(
    "key",
    [
        "dashscope-instant/other/2026-11-24/dir/cat.png",
        "/etc/passwd",
        "../../cat.png",
    ],
)
def test_key_outside_its_prefix_is_refused(client: TestClient, key: str) -> None:
    policy = get_policy(client)
    r = upload(client, form(policy, key=key))
    assert_error(r, 403, "AccessDenied")
    assert "starts-with" in r.json()["message"]
    sibling = policy["upload_dir"] + "x/cat.png"  # same prefix as a string, other folder
    assert_error(upload(client, form(policy, key=sibling)), 403, "AccessDenied")


def test_existing_key_is_never_overwritten(client: TestClient, settings: Settings) -> None:
    policy = get_policy(client)
    fields = form(policy)
    assert upload(client, fields, b"first").status_code == 200
    r = upload(client, fields, b"second")
    assert_error(r, 409, "FileAlreadyExists")
    assert stored(settings, fields["key"]).read_bytes() == b"first"
    assert not list((settings.store.data_dir / "uploads" / ".incoming").iterdir())


def signed(client: TestClient, policy: UploadPolicy) -> dict[str, Any]:
    """getPolicy-like data for a hand-made policy, signed with the server's key."""
    signer: PolicySigner = service(client).signer
    token = signer.encode(policy)
    return {
        "oss_access_key_id": "vace-server",
        "signature": signer.sign(token),
        "policy": token,
        "upload_dir": policy.upload_dir,
        "x_oss_object_acl": "private",
        "x_oss_forbid_overwrite": "true",
    }


def test_oversized_file_is_refused_while_streaming(client: TestClient, settings: Settings) -> None:
    small = UploadPolicy("team-a", MODEL, "dashscope-instant/a/2026-11-24/b", 2**62, 1000)
    data = signed(client, small)
    assert upload(client, form(data, name="fits.png"), b"x" * 1000).status_code == 200
    r = upload(client, form(data, name="big.png"), b"x" * 1001)
    assert_error(r, 400, "EntityTooLarge")
    assert not stored(settings, small.upload_dir + "/big.png").exists()
    assert not list((settings.store.data_dir / "uploads" / ".incoming").iterdir())


def test_declared_body_over_the_limit_is_refused_before_reading(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(routes_uploads, "MAX_FILE_BYTES", 100)
    monkeypatch.setattr(routes_uploads, "FORM_OVERHEAD_BYTES", 0)
    policy = get_policy(client)
    assert_error(upload(client, form(policy), b"x" * 50), 400, "EntityTooLarge")


def test_malformed_forms(client: TestClient) -> None:
    policy = get_policy(client)
    fields = form(policy)
    del fields["policy"]
    assert_error(upload(client, fields), 400, "InvalidParameter", "Field required: policy")
    r = client.post(UPLOAD_PATH, data=form(policy))  # no file part
    assert r.status_code == 400
    r = client.post(UPLOAD_PATH, content=b"{}", headers={"Content-Type": "application/json"})
    assert_error(r, 400, "InvalidParameter")
    # the file before the fields (OSS requires it last)
    r = client.post(
        UPLOAD_PATH,
        files=[("file", ("a.png", b"x", "image/png")), ("key", (None, "k"))],
    )
    assert_error(r, 400, "InvalidParameter", "Field required: OSSAccessKeyId")
