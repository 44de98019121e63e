"""oss:// media in the worker: `MediaFetcher.for_task` reads the task account's uploads through
the same checks as downloads."""

from __future__ import annotations

import io
from pathlib import Path
from typing import BinaryIO

import pytest

from tests.support.clock import FakeClock
from tests.support.images import png_bytes, scene
from tests.support.videos import moving_square_frames, mp4_bytes
from vace_server.api.wire_names import canonical_model, wire_message
from vace_server.errors import InputField, InvalidFile, InvalidURL
from vace_server.media.fetch import FetchedMedia
from vace_server.media.images import IMAGE_MAX_BYTES, MediaFetcher, media_for_task
from vace_server.settings import Settings
from vace_server.tasks.uploads import UPLOAD_TTL_MS, UploadStore

FIELD = InputField.FIRST_FRAME
MODEL = "wanx2.1-vace-plus"


class _FakeFetcher:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def fetch(self, url: str, *, field: InputField, max_bytes: int) -> FetchedMedia:
        self.calls.append(url)
        return FetchedMedia(png_bytes(scene()), "image/png", url)


@pytest.fixture
def fake() -> _FakeFetcher:
    return _FakeFetcher()


@pytest.fixture
def fetcher(uploads: UploadStore, fake: _FakeFetcher) -> MediaFetcher:
    return MediaFetcher(Settings(), fetcher=fake, uploads=uploads)  # type: ignore[arg-type]


def put(store: UploadStore, name: str, data: bytes, account: str = "a") -> str:
    key = f"dashscope-instant/r/2026-11-24/s/{name}"
    path = store.path_for(key)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    model = canonical_model("wan2.1-vace-plus")  # the key the API binds uploads to
    store.record(key, account=account, model=model, size_bytes=len(data))
    return "oss://" + key


def test_task_source_reads_its_own_uploads(
    fetcher: MediaFetcher, uploads: UploadStore, fake: _FakeFetcher
) -> None:
    url = put(uploads, "frame.png", png_bytes(scene(480, 400)))
    source = fetcher.for_task("a", MODEL)
    image = source.fetch_image(url, FIELD)
    assert (image.mode, image.size) == ("RGB", (480, 400))
    assert source.fetch_mask_image(url, InputField.MASK_IMAGE).mode == "L"
    # http(s) still goes through the hostile-URL fetcher
    assert source.fetch_image("http://a.example/x.png", FIELD).size == (480, 400)
    assert fake.calls == ["http://a.example/x.png"]


def test_task_source_reads_uploaded_videos(fetcher: MediaFetcher, uploads: UploadStore) -> None:
    url = put(uploads, "clip.mp4", mp4_bytes(moving_square_frames(16), 16))
    clip = fetcher.for_task("a", MODEL).fetch_video(url, InputField.FIRST_CLIP, max_seconds=3)
    assert (clip.width, clip.height, clip.frame_count) == (64, 64, 16)


def test_other_account_missing_or_expired_is_invalid_url(
    fetcher: MediaFetcher, uploads: UploadStore, clock: FakeClock
) -> None:
    url = put(uploads, "frame.png", png_bytes(scene()))
    for source, target in [
        (fetcher.for_task("b", MODEL), url),
        (fetcher.for_task("a", "other-model"), url),
        (fetcher.for_task("a", MODEL), url + ".missing"),
        (fetcher, url),  # not bound to a task
    ]:
        with pytest.raises(InvalidURL) as exc:
            source.fetch_image(target, FIELD)
        assert exc.value.code == "InvalidURL"
        assert wire_message(exc.value.message) == (
            f"Invalid URL provided in your request. input.first_frame_url ({target}): no such "
            "upload for this API key and model; it may have expired (uploads last 48 hours), "
            "been made with another API key, or for another model. Upload the file again "
            "(getPolicy, then POST the file) with the same key and model as the task."
        )
    clock.advance(UPLOAD_TTL_MS)
    with pytest.raises(InvalidURL):
        fetcher.for_task("a", MODEL).fetch_image(url, FIELD)


def test_uploads_get_the_download_checks(fetcher: MediaFetcher, uploads: UploadStore) -> None:
    source = fetcher.for_task("a", MODEL)
    with pytest.raises(InvalidFile) as exc:
        source.fetch_image(put(uploads, "big.png", b"\x89PNG" + b"\0" * IMAGE_MAX_BYTES), FIELD)
    assert exc.value.code == "InvalidFile.Size"
    message = wire_message(exc.value.message)
    assert "input.first_frame_url" in message and "10 MB" in message
    with pytest.raises(InvalidFile) as exc:
        source.fetch_image(put(uploads, "text.png", b"not an image at all"), FIELD)
    assert exc.value.code == "InvalidFile.Format"
    with pytest.raises(InvalidFile) as exc:
        source.fetch_image(put(uploads, "tiny.png", png_bytes(scene(100, 100))), FIELD)
    assert exc.value.code == "InvalidFile.Resolution"


def test_media_for_task_binds_fetchers_and_passes_fakes_through(fetcher: MediaFetcher) -> None:
    bound = media_for_task(fetcher, "a", MODEL)
    assert isinstance(bound, MediaFetcher) and bound is not fetcher
    other = object()
    assert media_for_task(other, "a", MODEL) is other  # type: ignore[arg-type]


class _OneAccountsUploads:
    """An `UploadResolver` without a database: every key is `data`, for account "a" only."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.asked: list[tuple[str, str, str]] = []

    def open(self, key: str, *, account: str, model: str) -> BinaryIO | None:
        self.asked.append((key, account, model))
        return io.BytesIO(self.data) if account == "a" else None


def test_for_task_reads_through_the_injected_resolver(fake: _FakeFetcher) -> None:
    resolver = _OneAccountsUploads(png_bytes(scene()))
    source = MediaFetcher(Settings(), fetcher=fake, uploads=resolver)  # type: ignore[arg-type]
    image = source.for_task("a", MODEL).fetch_image("oss://k/x.png", FIELD)
    assert image.mode == "RGB"
    with pytest.raises(InvalidURL):
        source.for_task("b", MODEL).fetch_image("oss://k/x.png", FIELD)
    assert resolver.asked == [("k/x.png", "a", MODEL), ("k/x.png", "b", MODEL)]
    assert fake.calls == []  # oss:// never reaches the downloader


def test_for_task_without_a_resolver_refuses_uploads_and_opens_no_database(
    tmp_path: Path,
) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    source = MediaFetcher(settings).for_task("a", MODEL)
    with pytest.raises(InvalidURL):
        source.fetch_image("oss://dashscope-instant/a/b/c/d.png", FIELD)
    assert not (tmp_path / "data").exists()  # no store was opened on the fly
