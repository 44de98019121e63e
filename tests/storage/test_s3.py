"""S3Storage against a real S3-compatible server process (moto): objects, presigned links,
retention purge, and how `VACE_STORAGE_URL` picks the storage."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.support.clock import FakeClock
from tests.support.s3_server import S3Server
from tests.tasks.test_store import SPEC
from vace_server.runtime import open_storage
from vace_server.settings import Settings
from vace_server.storage.base import S3Location, check_key, parse_storage_url
from vace_server.storage.local import LocalStorage
from vace_server.storage.s3 import SIGV4_MAX_SECONDS, S3Storage, make_client
from vace_server.tasks.maintenance import Maintenance
from vace_server.tasks.store import TaskStore

KEY = "2026-01-01/task-abc.mp4"
VIDEO = b"\x00\x00\x00\x18ftypmp42" + b"\x01" * 1000


def _settings(s3: S3Server, bucket: str, prefix: str = "pre/fix", **extra: object) -> Settings:
    return Settings(storage_url=f"s3://{bucket}/{prefix}", **s3.settings(), **extra)  # type: ignore[arg-type]


def _storage(
    s3: S3Server, bucket: str, clock: FakeClock | None = None, **extra: object
) -> S3Storage:
    settings = _settings(s3, bucket, "pre/fix", **extra)
    location = S3Location(bucket, "pre/fix").under("outputs")
    if clock is None:
        return S3Storage.from_settings(settings, location)
    return S3Storage.from_settings(settings, location, clock=clock)


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "v.mp4"
    path.write_bytes(VIDEO)
    return path


def test_put_exists_open_delete(s3_server: S3Server, s3_bucket: str, source: Path) -> None:
    storage = _storage(s3_server, s3_bucket)
    assert not storage.exists(KEY)
    storage.put_file(KEY, source)
    assert s3_server.keys(s3_bucket) == [f"pre/fix/outputs/{KEY}"]
    head = s3_server.client().head_object(Bucket=s3_bucket, Key=f"pre/fix/outputs/{KEY}")
    assert head["ContentType"] == "video/mp4"
    assert storage.exists(KEY)
    with storage.open(KEY) as body:
        assert body.read() == VIDEO
    storage.delete(KEY)
    assert not storage.exists(KEY)
    assert s3_server.keys(s3_bucket) == []
    storage.delete(KEY)  # missing is fine
    with pytest.raises(FileNotFoundError):
        storage.open(KEY)


def test_presigned_url_downloads_without_credentials(
    s3_server: S3Server, s3_bucket: str, source: Path, clock: FakeClock
) -> None:
    storage = _storage(s3_server, s3_bucket, clock)
    storage.put_file(KEY, source)
    url = storage.url_for(KEY, expires_ms=clock() + 3_600_000)
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}" == s3_server.endpoint
    assert parts.path == f"/{s3_bucket}/pre/fix/outputs/{KEY}"
    query = parse_qs(parts.query)
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    assert query["X-Amz-Expires"] == ["3600"]
    assert query["X-Amz-Signature"][0]
    assert query["X-Amz-Credential"][0].startswith("AKIAVACETESTKEY00000/")
    r = httpx.get(url, timeout=10)  # plain HTTP client, no credentials, no Authorization
    assert r.status_code == 200
    assert r.content == VIDEO
    assert r.headers["content-type"] == "video/mp4"


def test_presigned_lifetime_is_clamped(
    s3_server: S3Server, s3_bucket: str, clock: FakeClock
) -> None:
    storage = _storage(s3_server, s3_bucket, clock)

    def expires(delta_ms: int) -> str:
        url = storage.url_for(KEY, expires_ms=clock() + delta_ms)
        return parse_qs(urlsplit(url).query)["X-Amz-Expires"][0]

    assert expires(1_500) == "2"  # rounded up to whole seconds
    assert expires(0) == "1" and expires(-60_000) == "1"  # never below 1 s
    assert expires(24 * 3_600_000) == "86400"  # the default retention
    assert expires(30 * 24 * 3_600_000) == str(SIGV4_MAX_SECONDS)  # SigV4's 7 days
    short = _storage(s3_server, s3_bucket, clock, s3_presign_max_seconds=600)
    url = short.url_for(KEY, expires_ms=clock() + 3_600_000)
    assert parse_qs(urlsplit(url).query)["X-Amz-Expires"] == ["600"]
    with pytest.raises(ValueError):
        Settings(s3_presign_max_seconds=SIGV4_MAX_SECONDS + 1)


def test_put_new_never_overwrites(
    s3_server: S3Server, s3_bucket: str, source: Path, tmp_path: Path
) -> None:
    storage = _storage(s3_server, s3_bucket)
    storage.put_new(KEY, source)
    other = tmp_path / "other"
    other.write_bytes(b"second")
    with pytest.raises(FileExistsError):
        storage.put_new(KEY, other)
    assert s3_server.get(s3_bucket, f"pre/fix/outputs/{KEY}") == VIDEO


@pytest.mark.parametrize("key", ["../escape.mp4", "/abs.mp4", "a//b", "a/./b", "", "a\\b"])
def test_bad_keys_are_refused(s3_server: S3Server, s3_bucket: str, key: str) -> None:
    storage = _storage(s3_server, s3_bucket)
    with pytest.raises(ValueError):
        storage.object_key(key)
    with pytest.raises(ValueError):
        check_key(key)


def test_maintenance_purges_expired_outputs(
    s3_server: S3Server, s3_bucket: str, source: Path, store: TaskStore, clock: FakeClock
) -> None:
    storage = _storage(s3_server, s3_bucket, clock)
    task = store.create(SPEC, account="a", api_key_id="k", request_id="r")
    claim = store.claim("w")
    assert claim is not None
    storage.put_file(KEY, source)
    store.succeed(claim, output_key=KEY, output_seconds=5, actual_prompt=None, effective={})
    maintenance = Maintenance(store, storage, interval=60, task_timeout_ms=3 * 3_600_000)
    maintenance.run_once()
    assert storage.exists(KEY)
    clock.advance(store.retention_ms)
    maintenance.run_once()
    assert not storage.exists(KEY)
    assert s3_server.keys(s3_bucket) == []
    assert store.get(task.id) is None


def test_storage_url_picks_the_storage(s3_server: S3Server, s3_bucket: str, tmp_path: Path) -> None:
    data = tmp_path / "data"
    default = open_storage(Settings(data_dir=data))
    assert isinstance(default, LocalStorage) and default.root == (data / "outputs").resolve()
    folder = open_storage(Settings(data_dir=data, storage_url=f"file://{tmp_path}/out"))
    assert isinstance(folder, LocalStorage) and folder.root == (tmp_path / "out").resolve()
    plain = open_storage(Settings(data_dir=data, storage_url=str(tmp_path / "plain")))
    assert isinstance(plain, LocalStorage) and plain.root == (tmp_path / "plain").resolve()
    s3 = open_storage(_settings(s3_server, s3_bucket, data_dir=data))
    assert isinstance(s3, S3Storage)
    assert s3.location == S3Location(s3_bucket, "pre/fix/outputs")
    assert parse_storage_url(f"s3://{s3_bucket}", data) == S3Location(s3_bucket, "")
    assert parse_storage_url(f"s3://{s3_bucket}/a/b/", data) == S3Location(s3_bucket, "a/b")
    for bad in ("s3:///prefix", "gs://bucket/x", "https://example.com/x", "s3://b/a/../c"):
        with pytest.raises(ValueError):
            parse_storage_url(bad, data)
    with pytest.raises(ValueError, match="both"):
        make_client(Settings(s3_access_key_id="only-the-id"))
