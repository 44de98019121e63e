"""Uploads and results with `VACE_STORAGE_URL=s3://...` against a real S3-compatible server
(moto): the PostObject receiver puts the file into the bucket, a worker reads it back through
the download checks, retention purges the object; the query hands out presigned links."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import KEY_A, auth
from tests.api.test_uploads import MODEL, form, get_policy, service, upload
from tests.support.clock import FakeClock
from tests.support.images import png_bytes, scene
from tests.support.s3_server import S3Server
from tests.tasks.test_store import SPEC
from vace_server.api.app import create_app
from vace_server.api.context import AppContext
from vace_server.errors import InputField, InvalidFile, InvalidURL
from vace_server.media.images import IMAGE_MAX_BYTES, MediaFetcher
from vace_server.settings import Settings
from vace_server.storage.s3 import S3Storage
from vace_server.storage.uploads import ObjectUploadFiles
from vace_server.tasks.maintenance import Maintenance
from vace_server.tasks.uploads import UPLOAD_TTL_MS, UploadExists, UploadStore

PREFIX = "vace/test"
FIELD = InputField.FIRST_FRAME


@pytest.fixture
def clock() -> FakeClock:
    """Starts at the real time: the receiver stamps its rows with the wall clock."""
    return FakeClock(int(time.time() * 1000))


@pytest.fixture
def settings(tmp_path: Path, s3_server: S3Server, s3_bucket: str) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        api_keys=f"{KEY_A}=team-a",
        workers=0,
        public_base_url="http://testserver",
        storage_url=f"s3://{s3_bucket}/{PREFIX}",
        **s3_server.settings(),
    )


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        yield c


def _local_files(settings: Settings) -> list[Path]:
    return [p for p in settings.store.data_dir.rglob("*") if p.is_file()]


def test_receiver_worker_read_and_purge(
    client: TestClient, settings: Settings, s3_server: S3Server, s3_bucket: str, clock: FakeClock
) -> None:
    before = set(_local_files(settings))
    image = png_bytes(scene(480, 400))
    fields = form(get_policy(client))
    r = upload(client, fields, image)
    assert r.status_code == 200, r.text
    key = fields["key"]
    # the object is in the bucket, nothing new is left in the data folder
    assert s3_server.keys(s3_bucket) == [f"{PREFIX}/uploads/{key}"]
    assert s3_server.get(s3_bucket, f"{PREFIX}/uploads/{key}") == image
    assert set(_local_files(settings)) == before
    assert isinstance(service(client).store.files, ObjectUploadFiles)

    # a second upload to the same key is refused and does not replace the object
    again = upload(client, fields, b"\x89PNG other")
    assert again.status_code == 409 and again.json()["code"] == "FileAlreadyExists"
    assert s3_server.get(s3_bucket, f"{PREFIX}/uploads/{key}") == image

    # a worker (its own store, as in a worker process) reads it through the image checks
    engine = service(client).store.engine
    worker_store = UploadStore.from_settings(settings, engine, clock=clock)
    source = MediaFetcher(settings, uploads=worker_store).for_task("team-a", MODEL)
    assert source.fetch_image("oss://" + key, FIELD).size == (480, 400)
    with pytest.raises(InvalidURL):  # another account's upload
        MediaFetcher(settings, uploads=worker_store).for_task("team-b", MODEL).fetch_image(
            "oss://" + key, FIELD
        )

    # 48 h later the maintenance pass purges the row and the object
    clock.advance(UPLOAD_TTL_MS + 60_000)
    context: AppContext = client.app.state.ctx  # type: ignore[attr-defined]
    Maintenance(
        context.store, context.storage, interval=60, task_timeout_ms=3_600_000, uploads=worker_store
    ).run_once()
    assert s3_server.keys(s3_bucket) == []
    with pytest.raises(InvalidURL):
        source.fetch_image("oss://" + key, FIELD)


def test_uploads_get_the_size_cap_and_checks(
    settings: Settings, client: TestClient, clock: FakeClock
) -> None:
    store = UploadStore.from_settings(settings, service(client).store.engine, clock=clock)
    source = MediaFetcher(settings, uploads=store).for_task("a", MODEL)

    def put(name: str, data: bytes) -> str:
        part = store.begin(len(data) + 1)
        part.write(data)
        key = f"dashscope-instant/r/2026-11-24/s/{name}"
        store.commit(part, key, account="a", model=MODEL)
        return "oss://" + key

    with pytest.raises(InvalidFile) as exc:
        source.fetch_image(put("big.png", b"\x89PNG" + b"\0" * IMAGE_MAX_BYTES), FIELD)
    assert exc.value.code == "InvalidFile.Size"
    with pytest.raises(InvalidFile) as exc:
        source.fetch_image(put("text.png", b"not an image at all"), FIELD)
    assert exc.value.code == "InvalidFile.Format"


def test_an_object_without_a_row_is_never_replaced(
    settings: Settings, client: TestClient, s3_server: S3Server, s3_bucket: str
) -> None:
    store = UploadStore.from_settings(settings, service(client).store.engine)
    key = "dashscope-instant/r/2026-11-24/s/left.png"
    s3_server.client().put_object(Bucket=s3_bucket, Key=f"{PREFIX}/uploads/{key}", Body=b"old")
    part = store.begin(100)
    part.write(b"new")
    with pytest.raises(UploadExists):  # If-None-Match: * refused the put
        store.commit(part, key, account="a", model=MODEL)
    assert s3_server.get(s3_bucket, f"{PREFIX}/uploads/{key}") == b"old"
    assert not part.path.exists()
    assert not store.is_live(key, account="a", model=MODEL)  # the row was taken back


def test_query_hands_out_a_presigned_link(
    client: TestClient, settings: Settings, s3_server: S3Server, s3_bucket: str, tmp_path: Path
) -> None:
    context: AppContext = client.app.state.ctx  # type: ignore[attr-defined]
    assert isinstance(context.storage, S3Storage)
    task = context.store.create(SPEC, account="team-a", api_key_id="k", request_id="r")
    claim = context.store.claim("w")
    assert claim is not None
    video = tmp_path / "v.mp4"
    video.write_bytes(b"\x00\x00\x00\x18ftypmp42")
    key = f"2026-01-01/{task.id}-secret.mp4"
    context.storage.put_file(key, video)
    context.store.succeed(claim, output_key=key, output_seconds=5, actual_prompt=None, effective={})
    out = client.get(f"/api/v1/tasks/{task.id}", headers=auth()).json()["output"]
    url = out["video_url"]
    parts = urlsplit(url)
    assert url.startswith(f"{s3_server.endpoint}/{s3_bucket}/{PREFIX}/outputs/{key}?")
    expires = int(parse_qs(parts.query)["X-Amz-Expires"][0])
    assert settings.retention_ms // 1000 - 60 <= expires <= settings.retention_ms // 1000 + 1
    assert httpx.get(url, timeout=10).content == video.read_bytes()
    # the API's own download route serves only the local-folder storage
    signed = f"/api/v1/outputs/{key}?expires=9999999999999&signature=x"
    assert client.get(signed).status_code == 404
    assert not (settings.store.data_dir / "outputs").exists()
