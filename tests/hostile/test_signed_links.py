"""Signed output links (`/api/v1/outputs/<key>?expires=&signature=`): a tampered, expired,
malformed, non-ASCII or overlong signature or expiry is a 403 with the link message; a key
that leaves the storage folder is never served, even when it carries a valid signature."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from fastapi.testclient import TestClient

from tests.support.hostile import app_client, assert_error, assert_healthy, hostile_settings
from tests.support.responses import HttpResponse
from vace_server.api.routes_outputs import LINK_REFUSED
from vace_server.clock import wall_clock_ms
from vace_server.storage.local import OUTPUT_ROUTE, LocalStorage

KEY = "outputs/task-1/result.mp4"
CONTENT = b"not really an mp4, but served as one"
HOUR_MS = 3_600_000


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    with app_client(hostile_settings(tmp_path_factory.mktemp("links"))) as c:
        source = tmp_path_factory.mktemp("src") / "result.mp4"
        source.write_bytes(CONTENT)
        storage(c).put_file(KEY, source)
        yield c


def storage(client: TestClient) -> LocalStorage:
    found = client.app.state.ctx.storage  # type: ignore[attr-defined]
    assert isinstance(found, LocalStorage)
    return found


def link(
    client: TestClient, key: str = KEY, *, expires_ms: int | None = None
) -> tuple[str, str, str]:
    """(path, expires, signature) of a link the server itself would hand out."""
    expires = wall_clock_ms() + HOUR_MS if expires_ms is None else expires_ms
    url = urlsplit(storage(client).signed_url(key, expires_ms=expires))
    query = parse_qs(url.query)
    return url.path, query["expires"][0], query["signature"][0]


def get(client: TestClient, path: str, query: str) -> HttpResponse:
    return client.get(f"{path}?{query}" if query else path)


def test_a_valid_link_is_served(client: TestClient) -> None:
    path, expires, signature = link(client)
    r = client.get(path, params={"expires": expires, "signature": signature})
    assert r.status_code == 200
    assert r.content == CONTENT


def _signature_cases() -> list[object]:
    def flip(sig: str) -> str:
        return ("0" if sig[0] != "0" else "1") + sig[1:]

    return [
        pytest.param(lambda s: flip(s), id="one-char-changed"),
        pytest.param(lambda s: s.upper(), id="upper-case-hex"),
        pytest.param(lambda s: s[:-1], id="truncated"),
        pytest.param(lambda s: s + "0", id="extended"),
        pytest.param(lambda s: "", id="empty"),
        pytest.param(lambda s: quote(s[:-1] + "\u00e9"), id="non-ascii-latin1"),
        pytest.param(lambda s: quote(s[:-1] + "\u4e2d"), id="non-ascii-cjk"),
        pytest.param(lambda s: s[:-1] + "%ED%A0%80", id="utf8-surrogate-bytes"),
        pytest.param(lambda s: s[:-1] + "%FF", id="invalid-utf8"),
        pytest.param(lambda s: s[:-1] + "%00", id="nul"),
        pytest.param(lambda s: s * 200, id="overlong"),
        pytest.param(lambda s: " " + s, id="leading-space"),
    ]


@pytest.mark.parametrize("tamper", _signature_cases())
def test_a_bad_signature_is_a_403(client: TestClient, tamper: Callable[[str], str]) -> None:
    path, expires, signature = link(client)
    bad = tamper(signature)
    r = get(client, path, f"expires={expires}&signature={bad}")
    assert_error(r, 403, "AccessDenied", LINK_REFUSED)
    assert_healthy(client)


EXPIRY_CASES = [
    ("missing", None),
    ("empty", ""),
    ("plus-one", "+1"),
    ("negative", "-1"),
    ("float", "1.5e12"),
    ("hex", "0x10"),
    ("fullwidth", "\uff11" * 13),
    ("underscore", "1_700_000_000_000"),
    ("huge", "9" * 40),
    ("int64-overflow", "9223372036854775808"),
    ("nul", "1%00"),
    ("non-ascii", "%C3%A9"),
]


@pytest.mark.parametrize(("expires"), [pytest.param(v, id=i) for i, v in EXPIRY_CASES])
def test_a_malformed_expiry_is_a_403(client: TestClient, expires: str | None) -> None:
    path, _, signature = link(client)
    query = (
        f"signature={signature}" if expires is None else f"expires={expires}&signature={signature}"
    )
    assert_error(get(client, path, query), 403, "AccessDenied", LINK_REFUSED)
    assert_healthy(client)


def test_a_changed_expiry_is_a_403(client: TestClient) -> None:
    path, expires, signature = link(client)
    later = str(int(expires) + 1)
    r = get(client, path, f"expires={later}&signature={signature}")
    assert_error(r, 403, "AccessDenied", LINK_REFUSED)


def test_an_expired_link_is_a_403(client: TestClient) -> None:
    path, expires, signature = link(client, expires_ms=wall_clock_ms() - 1)
    r = get(client, path, f"expires={expires}&signature={signature}")
    assert_error(r, 403, "AccessDenied", LINK_REFUSED)


def test_a_signature_is_bound_to_its_key(client: TestClient) -> None:
    _, expires, signature = link(client)
    for other in ("outputs/task-1/other.mp4", "outputs/task-2/result.mp4", KEY + "x", KEY.upper()):
        r = get(
            client, f"{OUTPUT_ROUTE}/{quote(other)}", f"expires={expires}&signature={signature}"
        )
        assert_error(r, 403, "AccessDenied", LINK_REFUSED)


OUTSIDE_KEYS = [
    "../secret.txt",
    "outputs/../../secret.txt",
    "/etc/hostname",
    "outputs/task-1/../../../secret.txt",
    "outputs",  # a folder, not a file
    "",
    "outputs/task-1/result.mp4\x00.png",
    "outputs\\..\\..\\secret.txt",
]


@pytest.mark.parametrize("key", OUTSIDE_KEYS)
def test_a_validly_signed_key_outside_the_folder_is_never_served(
    client: TestClient, key: str, tmp_path: Path
) -> None:
    secret = storage(client).root.parent / "secret.txt"
    secret.write_text("must not leak")
    expires = wall_clock_ms() + HOUR_MS
    signature = storage(client)._sign(key, expires)
    # Sent as the server would write it, and with the slashes percent-encoded too.
    for path in (f"{OUTPUT_ROUTE}/{quote(key)}", f"{OUTPUT_ROUTE}/{quote(key, safe='')}"):
        r = get(client, path, f"expires={expires}&signature={signature}")
        assert r.status_code in (403, 404), (path, r.status_code, r.text)
        assert b"must not leak" not in r.content
        assert_error(r, r.status_code, "AccessDenied" if r.status_code == 403 else "NotFound")
    assert_healthy(client)


def test_other_methods_are_refused(client: TestClient) -> None:
    path, expires, signature = link(client)
    for method in ("POST", "PUT", "DELETE"):
        r = client.request(method, f"{path}?expires={expires}&signature={signature}")
        assert_error(r, 405, "MethodNotAllowed")
    assert_healthy(client)
