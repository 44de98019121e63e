"""UploadStore: the files behind oss:// keys, bound to account and model, for 48 hours."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support.clock import FakeClock
from vace_server.api.wire_names import canonical_model
from vace_server.storage.uploads import UploadTooLarge
from vace_server.tasks.uploads import (
    UPLOAD_TTL_MS,
    UploadExists,
    UploadStore,
)

KEY = "dashscope-instant/abc/2026-11-24/def/cat.png"


def _put(store: UploadStore, key: str = KEY, data: bytes = b"hello", **kw: str) -> Path:
    part = store.begin(1000)
    part.write(data)
    store.commit(
        part, key, account=kw.get("account", "a"), model=kw.get("model", "wanx2.1-vace-plus")
    )
    return store.path_for(key)


def test_commit_places_the_file_and_resolve_binds_account_and_model(
    uploads: UploadStore,
) -> None:
    path = _put(uploads, model=canonical_model("wan2.1-vace-plus"))  # the API's model key
    assert path.read_bytes() == b"hello"
    assert path == uploads.root / KEY
    assert not list((uploads.root / ".incoming").iterdir())  # temporary file gone
    # both VACE names are one model
    assert uploads.resolve(KEY, account="a", model=canonical_model("wanx2.1-vace-plus")) == path
    assert uploads.resolve(KEY, account="a", model=canonical_model("wan2.1-vace-plus")) == path
    assert uploads.resolve(KEY, account="b", model="wanx2.1-vace-plus") is None
    assert uploads.resolve(KEY, account="a", model="other-model") is None
    assert uploads.resolve(KEY + "x", account="a", model="wanx2.1-vace-plus") is None


def test_resolve_refuses_expired_and_vanished_files(uploads: UploadStore, clock: FakeClock) -> None:
    path = _put(uploads)
    clock.advance(UPLOAD_TTL_MS - 1)
    assert uploads.resolve(KEY, account="a", model="wanx2.1-vace-plus") == path
    clock.advance(1)
    assert uploads.resolve(KEY, account="a", model="wanx2.1-vace-plus") is None
    other = "dashscope-instant/x/2026-11-24/y/dog.png"
    _put(uploads, other).unlink()
    assert uploads.resolve(other, account="a", model="wanx2.1-vace-plus") is None


def test_never_overwrites(uploads: UploadStore) -> None:
    path = _put(uploads, data=b"first")
    part = uploads.begin(1000)
    part.write(b"second")
    with pytest.raises(UploadExists):
        uploads.commit(part, KEY, account="b", model="wanx2.1-vace-plus")
    assert path.read_bytes() == b"first"
    assert not part.path.exists()
    assert uploads.resolve(KEY, account="a", model="wanx2.1-vace-plus") == path
    with pytest.raises(UploadExists):  # a row without its file still blocks the key
        path.unlink()
        _put(uploads, data=b"third")
    assert not path.exists()


def test_without_hard_links_still_exclusive(
    uploads: UploadStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_links(_src: object, _dst: object) -> None:
        raise PermissionError("hard links not supported")

    monkeypatch.setattr(os, "link", no_links)
    path = _put(uploads, data=b"first")
    assert path.read_bytes() == b"first"
    with pytest.raises(UploadExists):
        _put(uploads, data=b"second")
    assert path.read_bytes() == b"first"


def test_partial_upload_stops_past_its_limit(uploads: UploadStore) -> None:
    part = uploads.begin(10)
    part.write(b"x" * 10)
    with pytest.raises(UploadTooLarge):
        part.write(b"y")
    assert part.size == 10
    part.discard()
    assert not part.path.exists()


@pytest.mark.parametrize("key", ["../escape.png", "/etc/passwd", ".incoming/x.part", "."])
def test_keys_cannot_escape(uploads: UploadStore, key: str) -> None:
    with pytest.raises(ValueError):
        uploads.path_for(key)
    assert uploads.resolve(key, account="a", model="wanx2.1-vace-plus") is None


def test_purge_removes_expired_rows_files_and_folders(
    uploads: UploadStore, clock: FakeClock
) -> None:
    old = _put(uploads)
    clock.advance(3_600_000)
    young_key = "dashscope-instant/new/2026-11-24/one/dog.png"
    young = _put(uploads, young_key)
    stale = uploads.begin(10)
    stale.close()
    os.utime(stale.path, (0, 0))
    fresh = uploads.begin(10)
    clock.advance(UPLOAD_TTL_MS - 3_600_000)
    assert uploads.purge_expired() == [KEY]
    assert not old.exists()
    assert not (uploads.root / "dashscope-instant" / "abc").exists()  # empty folders gone
    assert young.exists()
    assert uploads.resolve(young_key, account="a", model="wanx2.1-vace-plus") == young
    assert not stale.path.exists() and fresh.path.exists()  # only stale partial files
    assert uploads.purge_expired() == []
    clock.advance(3_600_000)
    assert uploads.purge_expired() == [young_key]
    assert uploads.root.is_dir() and not (uploads.root / "dashscope-instant").exists()


def test_a_file_without_a_row_is_never_replaced(uploads: UploadStore) -> None:
    path = uploads.path_for(KEY)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"left behind")
    part = uploads.begin(1000)
    part.write(b"new")
    with pytest.raises(UploadExists):
        uploads.commit(part, KEY, account="a", model="wanx2.1-vace-plus")
    assert path.read_bytes() == b"left behind"
    assert not part.path.exists()
    assert not uploads.is_live(KEY, account="a", model="wanx2.1-vace-plus")  # row taken back
    _put(uploads, "dashscope-instant/abc/2026-11-24/def/other.png")  # the store still works
