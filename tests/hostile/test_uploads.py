"""Upload abuse: the getPolicy query and the PostObject receiver (no API key: the signed
policy is the credential). Hand-built multipart bodies reach the parser exactly as written;
every case is a DashScope-shaped 4xx, leaves no file behind, and the server stays healthy."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.support.hostile import (
    KEY_A,
    MODEL,
    app_client,
    assert_error,
    assert_healthy,
    auth,
    hostile_settings,
    invalid,
)
from tests.support.responses import HttpResponse
from vace_server.api.routes_uploads import RECEIVE_ROUTE, UploadService
from vace_server.api.upload_form import FIELD_MAX_BYTES, MALFORMED_FORM, MAX_FIELDS
from vace_server.api.upload_policy import (
    SIGNATURE_MISMATCH,
    UNKNOWN_ACCESS_KEY,
    UploadPolicy,
)

BOUNDARY = "hostileboundary42"
EMPTY_MODEL = 'Required parameter "model" missing from request.'


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    with app_client(hostile_settings(tmp_path_factory.mktemp("uploads"))) as c:
        yield c


def service(client: TestClient) -> UploadService:
    svc: UploadService = client.app.state.uploads  # type: ignore[attr-defined]
    return svc


def stored_files(client: TestClient) -> list[Path]:
    root = client.app.state.ctx.settings.store.data_dir / "uploads"  # type: ignore[attr-defined]
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def policy(client: TestClient) -> dict[str, Any]:
    r = client.get(
        "/api/v1/uploads", params={"action": "getPolicy", "model": MODEL}, headers=auth(KEY_A)
    )
    assert r.status_code == 200, r.text
    data: dict[str, Any] = r.json()["data"]
    return data


def fields_of(data: dict[str, Any], name: str = "cat.png") -> dict[str, bytes]:
    return {
        "OSSAccessKeyId": data["oss_access_key_id"].encode(),
        "Signature": data["signature"].encode(),
        "policy": data["policy"].encode(),
        "key": f"{data['upload_dir']}/{name}".encode(),
        "success_action_status": b"200",
    }


def multipart(
    fields: dict[str, bytes] | list[tuple[bytes, bytes]],
    file: bytes | None = b"\x89PNG...",
    *,
    closed: bool = True,
) -> bytes:
    """A multipart/form-data body written byte for byte (names and values unescaped)."""
    pairs = [(k.encode(), v) for k, v in fields.items()] if isinstance(fields, dict) else fields
    out = b""
    for name, value in pairs:
        out += f"--{BOUNDARY}\r\n".encode()
        out += b'Content-Disposition: form-data; name="' + name + b'"\r\n\r\n' + value + b"\r\n"
    if file is not None:
        out += f"--{BOUNDARY}\r\n".encode()
        out += b'Content-Disposition: form-data; name="file"; filename="cat.png"\r\n'
        out += b"Content-Type: image/png\r\n\r\n" + file + b"\r\n"
    if closed:
        out += f"--{BOUNDARY}--\r\n".encode()
    return out


def send(client: TestClient, body: bytes, content_type: str | None = None) -> HttpResponse:
    ctype = content_type or f"multipart/form-data; boundary={BOUNDARY}"
    headers = {"Content-Type": ctype.encode("latin-1")}
    return client.post(RECEIVE_ROUTE, content=body, headers=headers)  # type: ignore[arg-type]


def refused(client: TestClient, r: HttpResponse, status: int, code: str, message: str) -> None:
    assert_error(r, status, code, message)
    assert stored_files(client) == []  # nothing stored, no partial file left
    assert_healthy(client)


def test_a_valid_upload_still_works(client: TestClient) -> None:
    r = send(client, multipart(fields_of(policy(client), "ok.png")))
    assert r.status_code == 200, r.text
    files = stored_files(client)
    assert [p.name for p in files] == ["ok.png"]
    for p in files:
        p.unlink()


# ---------------------------------------------------------------- getPolicy query
POLICY_QUERIES = [
    ({"model": MODEL}, 400, "InvalidParameter", invalid("action")),
    ({"action": "getpolicy", "model": MODEL}, 400, "InvalidParameter", invalid("action")),
    ({"action": "getPolicy\x00", "model": MODEL}, 400, "InvalidParameter", invalid("action")),
    ({"action": "getPolicy" * 500, "model": MODEL}, 400, "InvalidParameter", invalid("action")),
    ({"action": "getPolicy"}, 400, "BadRequest.EmptyModel", EMPTY_MODEL),
    ({"action": "getPolicy", "model": ""}, 400, "BadRequest.EmptyModel", EMPTY_MODEL),
    ({"action": "getPolicy", "model": MODEL + "\x00"}, 400, "InvalidParameter", "Model not exist."),
    ({"action": "getPolicy", "model": "\ufffd"}, 400, "InvalidParameter", "Model not exist."),
    ({"action": "getPolicy", "model": "m" * 5000}, 400, "InvalidParameter", "Model not exist."),
]


@pytest.mark.parametrize(("params", "status", "code", "message"), POLICY_QUERIES)
def test_bad_policy_queries(
    client: TestClient, params: dict[str, str], status: int, code: str, message: str
) -> None:
    r = client.get("/api/v1/uploads", params=params, headers=auth(KEY_A))
    refused(client, r, status, code, message)


def test_surrogate_bytes_in_the_policy_query(client: TestClient) -> None:
    r = client.get("/api/v1/uploads?action=getPolicy&model=%ED%A0%80", headers=auth(KEY_A))
    refused(client, r, 400, "InvalidParameter", "Model not exist.")


# ---------------------------------------------------------------- receiver: the form itself
def test_content_types_that_are_not_a_form(client: TestClient) -> None:
    body = multipart(fields_of(policy(client)))
    for ctype in (
        "application/json",
        "multipart/form-data",  # no boundary
        "multipart/form-data; boundary=",
        "multipart/mixed; boundary=" + BOUNDARY,
        "text/plain; charset=\xe9",
    ):
        refused(client, send(client, body, ctype), 400, "InvalidParameter", MALFORMED_FORM)


def test_bodies_that_are_not_well_formed(client: TestClient) -> None:
    good = fields_of(policy(client))
    truncated = multipart(good, closed=False)
    refused(client, send(client, truncated), 400, "InvalidParameter", MALFORMED_FORM)
    nameless = f"--{BOUNDARY}\r\nContent-Disposition: form-data\r\n\r\nx\r\n".encode()
    refused(client, send(client, nameless), 400, "InvalidParameter", MALFORMED_FORM)
    garbage = b"\x00\xff" * 1000
    refused(client, send(client, garbage), 400, "InvalidParameter", MALFORMED_FORM)
    too_many = [(f"f{i}".encode(), b"x") for i in range(MAX_FIELDS + 1)]
    refused(client, send(client, multipart(too_many)), 400, "InvalidParameter", MALFORMED_FORM)


def test_an_overlong_field_is_refused(client: TestClient) -> None:
    fields = fields_of(policy(client))
    fields["Signature"] = b"A" * (FIELD_MAX_BYTES + 1)
    r = send(client, multipart(fields))
    refused(client, r, 400, "InvalidParameter", "The form field signature is too long.")


@pytest.mark.parametrize("missing", ["OSSAccessKeyId", "policy", "Signature", "key"])
def test_each_required_field(client: TestClient, missing: str) -> None:
    fields = fields_of(policy(client))
    del fields[missing]
    r = send(client, multipart(fields))
    refused(client, r, 400, "InvalidParameter", f"Field required: {missing}")
    fields[missing] = b""
    refused(
        client,
        send(client, multipart(fields)),
        400,
        "InvalidParameter",
        f"Field required: {missing}",
    )


def test_no_file_part(client: TestClient) -> None:
    r = send(client, multipart(fields_of(policy(client)), file=None))
    refused(client, r, 400, "InvalidParameter", "Field required: file")


@pytest.mark.parametrize(
    ("declared", "too_large"),
    [
        ("99999999999999999999999999", True),
        ("104857600000", True),
        # Not a size at all (an HTTP server in front refuses these first): the body decides.
        ("\u00b2", False),  # str.isdigit() says yes, int() says no
        ("\uff11", False),
        ("-1", False),
        ("abc", False),
    ],
)
def test_declared_lengths(client: TestClient, declared: str, too_large: bool) -> None:
    body = multipart(fields_of(policy(client)))
    headers = {
        "Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
        "Content-Length": declared.encode("utf-8"),
    }
    r = client.post(RECEIVE_ROUTE, content=body, headers=headers)  # type: ignore[arg-type]
    if too_large:
        refused(client, r, 400, "EntityTooLarge", r.json()["message"])
    else:
        assert r.status_code == 200, r.text
        for p in stored_files(client):
            p.unlink()
        assert_healthy(client)


# ---------------------------------------------------------------- receiver: the credential
def _credential_cases(data: dict[str, Any]) -> list[tuple[str, dict[str, bytes], str]]:
    sig, token = data["signature"].encode(), data["policy"].encode()
    flipped = (b"A" if sig[:1] != b"A" else b"B") + sig[1:]
    other = base64.b64encode(json.dumps({"account": "team-b"}).encode())
    return [
        ("access-key", {"OSSAccessKeyId": b"LTAI-someone"}, UNKNOWN_ACCESS_KEY),
        ("access-key-latin1", {"OSSAccessKeyId": b"vace-server\xe9"}, UNKNOWN_ACCESS_KEY),
        ("sig-flipped", {"Signature": flipped}, SIGNATURE_MISMATCH),
        ("sig-non-ascii", {"Signature": sig[:-2] + "\u00e9".encode()}, SIGNATURE_MISMATCH),
        ("sig-cjk", {"Signature": "\u4e2d\u6587".encode()}, SIGNATURE_MISMATCH),
        ("sig-invalid-utf8", {"Signature": b"\xff\xfe" + sig}, SIGNATURE_MISMATCH),
        ("sig-surrogate-bytes", {"Signature": b"\xed\xa0\x80"}, SIGNATURE_MISMATCH),
        ("sig-nul", {"Signature": sig + b"\x00"}, SIGNATURE_MISMATCH),
        ("sig-long", {"Signature": sig * 100}, SIGNATURE_MISMATCH),
        ("policy-other", {"policy": other}, SIGNATURE_MISMATCH),
        ("policy-not-base64", {"policy": b"!!!not base64!!!"}, SIGNATURE_MISMATCH),
        ("policy-non-ascii", {"policy": token[:-4] + "\u00e9".encode()}, SIGNATURE_MISMATCH),
        ("policy-invalid-utf8", {"policy": b"\xff" + token}, SIGNATURE_MISMATCH),
        ("policy-padded", {"policy": token + b"===="}, SIGNATURE_MISMATCH),
    ]


def test_forged_credentials(client: TestClient) -> None:
    data = policy(client)
    for case, change, message in _credential_cases(data):
        fields = {**fields_of(data), **change}
        r = send(client, multipart(fields))
        assert r.status_code == 403, (case, r.text)
        refused(client, r, 403, "AccessDenied", message)


def _signed(client: TestClient, payload: Any) -> dict[str, bytes]:
    """Form fields for a token the server's own key signed: what if the signer's output were
    ever malformed? (defence in depth behind the signature)."""
    signer = service(client).signer
    token = base64.b64encode(json.dumps(payload).encode()).decode()
    return {
        "OSSAccessKeyId": b"vace-server",
        "Signature": signer.sign(token).encode(),
        "policy": token.encode(),
        "key": b"dashscope-instant/x/cat.png",
    }


GOOD_POLICY = {
    "account": "team-a",
    "model": MODEL,
    "upload_dir": "dashscope-instant/x",
    "expires_ms": 2**62,
    "max_bytes": 1000,
}
ODD_POLICIES = [
    ("list", [1, 2]),
    ("string", "x"),
    ("missing-field", {k: v for k, v in GOOD_POLICY.items() if k != "max_bytes"}),
    ("extra-field", {**GOOD_POLICY, "admin": True}),
    ("account-int", {**GOOD_POLICY, "account": 7}),
    ("expires-string", {**GOOD_POLICY, "expires_ms": "soon"}),
    ("expires-float", {**GOOD_POLICY, "expires_ms": 1e300}),
    ("max-bytes-null", {**GOOD_POLICY, "max_bytes": None}),
]


@pytest.mark.parametrize(("payload"), [pytest.param(p, id=i) for i, p in ODD_POLICIES])
def test_a_signed_but_malformed_policy_is_refused(client: TestClient, payload: Any) -> None:
    r = send(client, multipart(_signed(client, payload)))
    refused(client, r, 403, "AccessDenied", SIGNATURE_MISMATCH)


def test_a_signed_policy_with_a_negative_size_limit_stores_nothing(client: TestClient) -> None:
    r = send(client, multipart(_signed(client, {**GOOD_POLICY, "max_bytes": -1})))
    refused(client, r, 400, "EntityTooLarge", r.json()["message"])


# ---------------------------------------------------------------- receiver: the key
BAD_NAMES = [
    b"..",
    b".",
    b"",
    b"a/b.png",
    b"..\\..\\x.png",
    b"cat\x00.png",
    b"cat\x1b[31m.png",
    b"cat\x7f.png",
    b"x" * 256,
    "\u4e2d".encode() * 86,  # 258 bytes of UTF-8
]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_unsafe_file_names_are_refused(client: TestClient, name: bytes) -> None:
    data = policy(client)
    fields = {**fields_of(data), "key": data["upload_dir"].encode() + b"/" + name}
    r = send(client, multipart(fields))
    assert_error(r, 403, "AccessDenied")
    assert stored_files(client) == []
    assert_healthy(client)


@pytest.mark.parametrize(
    "key", [b"/etc/passwd", b"../../x.png", b"dashscope-instant/other/x.png", b"\xff\xfe"]
)
def test_keys_outside_the_policy_prefix_are_refused(client: TestClient, key: bytes) -> None:
    fields = {**fields_of(policy(client)), "key": key}
    r = send(client, multipart(fields))
    assert_error(r, 403, "AccessDenied")
    assert "starts-with" in r.json()["message"]
    assert stored_files(client) == []
    assert_healthy(client)


def test_odd_but_safe_names_are_stored_under_the_prefix(client: TestClient) -> None:
    data = policy(client)
    for name in (b"\xff\xfe.png", "\u732b.png".encode(), b"a b%2F.png"):
        fields = {**fields_of(data), "key": data["upload_dir"].encode() + b"/" + name}
        r = send(client, multipart(fields))
        assert r.status_code == 200, (name, r.text)
    root = client.app.state.ctx.settings.store.data_dir / "uploads"  # type: ignore[attr-defined]
    for p in stored_files(client):
        assert p.resolve().is_relative_to((root / data["upload_dir"]).resolve())
        p.unlink()


def test_a_duplicate_field_does_not_change_the_key_check(client: TestClient) -> None:
    data = policy(client)
    good = fields_of(data)
    pairs = [(k.encode(), v) for k, v in good.items()] + [(b"KEY", b"../../escape.png")]
    r = send(client, multipart(pairs))
    # Field names are case-insensitive; the last `key` is the one checked, and it is refused.
    assert_error(r, 403, "AccessDenied")
    assert stored_files(client) == []
    assert_healthy(client)


def test_policy_bytes_survive_only_as_issued(client: TestClient) -> None:
    issued = UploadPolicy("team-a", MODEL, "dashscope-instant/y", 2**62, 10)
    signer = service(client).signer
    token = signer.encode(issued)
    fields = {
        "OSSAccessKeyId": b"vace-server",
        "Signature": signer.sign(token).encode(),
        "policy": token.encode(),
        "key": b"dashscope-instant/y/big.png",
    }
    r = send(client, multipart(fields, file=b"x" * 11))
    refused(client, r, 400, "EntityTooLarge", r.json()["message"])
