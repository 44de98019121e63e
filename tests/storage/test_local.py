from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from vace_server.storage.local import LocalStorage, load_or_create_secret


def test_signed_url_verifies_until_expiry(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path, public_base_url="https://vace.example/", secret=b"k")
    url = storage.signed_url("2026-01-01/a b.mp4", expires_ms=1_000)
    parts = urlsplit(url)
    assert url.startswith("https://vace.example/api/v1/outputs/2026-01-01/a%20b.mp4?")
    query = parse_qs(parts.query)
    sig = query["signature"][0]
    # Known answer, computed outside Python from the literal inputs:
    # printf '2026-01-01/a b.mp4\n1000' | openssl dgst -sha256 -mac HMAC -macopt key:k
    assert sig == "39c9c4865c709ab5ba0a66e58b2cf01e9be4863ff2198c0067146c57fa407963"
    assert query["expires"] == ["1000"]
    assert storage.verify("2026-01-01/a b.mp4", 1_000, sig, now_ms=999)
    assert not storage.verify("2026-01-01/a b.mp4", 1_000, sig, now_ms=1_000)
    assert not storage.verify("2026-01-01/other.mp4", 1_000, sig, now_ms=0)
    assert not storage.verify("2026-01-01/a b.mp4", 2_000, sig, now_ms=0)
    other = LocalStorage(tmp_path, public_base_url="https://vace.example", secret=b"other")
    assert not other.verify("2026-01-01/a b.mp4", 1_000, sig, now_ms=0)


@pytest.mark.parametrize("key", ["../escape.mp4", "/etc/passwd", "a/../../b", ""])
def test_keys_cannot_escape_the_root(tmp_path: Path, key: str) -> None:
    storage = LocalStorage(tmp_path / "root", public_base_url="http://x", secret=b"k")
    with pytest.raises(ValueError):
        storage.path_for(key)


def test_put_and_delete(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "root", public_base_url="http://x", secret=b"k")
    src = tmp_path / "src"
    src.write_bytes(b"data")
    storage.put_file("d/x.mp4", src)
    assert storage.path_for("d/x.mp4").read_bytes() == b"data"
    storage.delete("d/x.mp4")
    assert not storage.exists("d/x.mp4")
    assert not (tmp_path / "root" / "d").exists()
    storage.delete("d/x.mp4")  # missing is fine


def test_secret_is_generated_once(tmp_path: Path) -> None:
    first = load_or_create_secret(tmp_path, None)
    assert first == load_or_create_secret(tmp_path, None)
    assert len(first) == 64
    assert load_or_create_secret(tmp_path, "configured") == b"configured"
