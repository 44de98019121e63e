"""A write that fails part-way (the disk fills up) leaves no partial `.part` file behind, and
the failure surfaces with the right code. The full disk is injected: the real copy / write
runs until half the bytes are written, then raises OSError(ENOSPC) as the kernel would."""

from __future__ import annotations

import errno
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import KEY_A
from tests.api.test_uploads import form, get_policy, upload
from tests.support.clock import FakeClock
from tests.tasks.test_store import SPEC
from vace_server.api.app import create_app
from vace_server.errors import UploadError
from vace_server.media.encode import encode_mp4
from vace_server.settings import Settings
from vace_server.storage import local, uploads
from vace_server.storage.local import LocalStorage
from vace_server.storage.uploads import INCOMING_DIR
from vace_server.tasks import db
from vace_server.tasks.store import TaskStore
from vace_server.tasks.uploads import UploadStore
from vace_server.worker.loop import WorkerLoop
from vace_server.worker.progress import Progress


def _disk_full() -> OSError:
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def _copy_half_then_fill_up(source: Any, target: Any, **_kw: object) -> Any:
    """`shutil.copyfile` on a disk that fills up half-way through the copy."""
    data = Path(source).read_bytes()
    with open(target, "wb") as f:
        f.write(data[: len(data) // 2])
    raise _disk_full()


class _FillingFile:
    """A real file object whose disk fills up after `room` bytes."""

    def __init__(self, inner: Any, room: int) -> None:
        self._inner = inner
        self._room = room

    def write(self, data: bytes) -> int:
        if len(data) > self._room:
            self._inner.write(data[: self._room])
            self._inner.flush()
            self._room = 0
            raise _disk_full()
        self._room -= len(data)
        return int(self._inner.write(data))

    def close(self) -> None:
        self._inner.close()

    @property
    def closed(self) -> bool:
        return bool(self._inner.closed)


def _parts(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.name.endswith(".part"))


# ---------------------------------------------------------------- outputs (LocalStorage)
@pytest.fixture
def storage(tmp_path: Path) -> LocalStorage:
    return LocalStorage(tmp_path / "outputs", public_base_url="http://x", secret=b"k")


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "video.mp4"
    path.write_bytes(os.urandom(64 * 1024))
    return path


def test_output_copy_on_a_full_disk_leaves_no_part(
    storage: LocalStorage, source: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(local.shutil, "copyfile", _copy_half_then_fill_up)
    with pytest.raises(OSError) as exc:
        storage.put_file("2026-01-01/t.mp4", source)
    assert exc.value.errno == errno.ENOSPC
    assert _parts(storage.root) == []
    assert not storage.exists("2026-01-01/t.mp4")


def test_output_rename_failure_leaves_no_part(
    storage: LocalStorage, source: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(_src: object, _dst: object) -> None:
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr(local.os, "replace", fail)
    with pytest.raises(OSError):
        storage.put_file("2026-01-01/t.mp4", source)
    assert _parts(storage.root) == []


def test_output_put_still_works_and_leaves_no_part(storage: LocalStorage, source: Path) -> None:
    storage.put_file("2026-01-01/t.mp4", source)
    assert storage.path_for("2026-01-01/t.mp4").read_bytes() == source.read_bytes()
    assert _parts(storage.root) == []


@pytest.fixture
def sqlite_store(tmp_path: Path, clock: FakeClock) -> Iterator[TaskStore]:
    engine = db.make_engine(f"sqlite:///{tmp_path / 'tasks.db'}")
    db.upgrade(engine)
    store = TaskStore(engine, lease_ms=10_000, max_attempts=2, retention_ms=3_600_000, clock=clock)
    yield store
    store.close()


def test_worker_reports_a_full_disk_as_upload_error(
    storage: LocalStorage,
    sqlite_store: TaskStore,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The worker's store step (`put_file` of the MP4 the pipeline encoded to a temporary
    file): the task's error is InternalError.Upload and the output folder holds no partial
    file."""
    sqlite_store.create(SPEC, account="a", api_key_id="k", request_id="r")
    claim = sqlite_store.claim("w")
    assert claim is not None
    loop = WorkerLoop(
        settings=Settings(output_fps=16),
        store=sqlite_store,
        storage=storage,
        model=None,  # type: ignore[arg-type]  # not used by the store step
        media=None,  # type: ignore[arg-type]
        annotators=None,  # type: ignore[arg-type]
        worker_id="w",
    )
    progress = Progress(sqlite_store, claim, threading.Event())
    encoded = tmp_path / "out.mp4"
    encode_mp4(np.zeros((4, 32, 32, 3), dtype=np.uint8), 16, encoded)
    monkeypatch.setattr(local.shutil, "copyfile", _copy_half_then_fill_up)
    with pytest.raises(UploadError) as exc:
        loop._upload(claim, encoded, progress)
    assert exc.value.code == "InternalError.Upload"
    assert _parts(storage.root) == []
    assert list(storage.root.rglob("*.mp4")) == []


# ---------------------------------------------------------------- uploads (UploadStore)
@pytest.fixture
def upload_store(tmp_path: Path, clock: FakeClock) -> Iterator[UploadStore]:
    engine = db.make_engine(f"sqlite:///{tmp_path / 'uploads.db'}")
    db.upgrade(engine)
    yield UploadStore(engine, tmp_path / "uploads", clock=clock)
    engine.dispose()


def test_upload_write_on_a_full_disk_removes_the_part(upload_store: UploadStore) -> None:
    part = upload_store.begin(1_000_000)
    part._file = _FillingFile(part._file, room=1000)  # type: ignore[assignment]
    part.write(b"x" * 600)
    with pytest.raises(OSError) as exc:
        part.write(b"y" * 600)
    assert exc.value.errno == errno.ENOSPC
    assert not part.path.exists()
    part.discard()  # the receiver's cleanup afterwards is harmless
    assert _parts(upload_store.root) == []


def test_upload_final_flush_on_a_full_disk_removes_the_part(upload_store: UploadStore) -> None:
    part = upload_store.begin(1_000_000)
    part.write(b"x" * 100)

    class FailingClose(_FillingFile):
        def close(self) -> None:
            self._inner.close()
            raise _disk_full()

    part._file = FailingClose(part._file, room=0)  # type: ignore[assignment]
    with pytest.raises(OSError):
        upload_store.commit(part, "dir/cat.png", account="a", model="wanx2.1-vace-plus")
    assert _parts(upload_store.root) == []
    assert not upload_store.is_live("dir/cat.png", account="a", model="wanx2.1-vace-plus")


def test_upload_placement_failure_leaves_neither_part_nor_placeholder(
    upload_store: UploadStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without hard links the file is placed via an empty O_EXCL placeholder and a rename;
    when the rename fails, the placeholder must not stay behind as an empty upload."""

    def no_links(_src: object, _dst: object) -> None:
        raise PermissionError("hard links not supported")

    def fail(_src: object, _dst: object) -> None:
        raise OSError(errno.EIO, "I/O error")

    part = upload_store.begin(1000)
    part.write(b"hello")
    monkeypatch.setattr(uploads.os, "link", no_links)
    monkeypatch.setattr(uploads.os, "replace", fail)
    with pytest.raises(OSError):
        upload_store.commit(part, "dir/cat.png", account="a", model="wanx2.1-vace-plus")
    monkeypatch.undo()
    assert _parts(upload_store.root) == []
    assert not (upload_store.root / "dir" / "cat.png").exists()
    assert not upload_store.is_live("dir/cat.png", account="a", model="wanx2.1-vace-plus")


def test_upload_over_http_on_a_full_disk_leaves_no_part(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through the receiver route: the request fails (a server-side error, DashScope-shaped),
    the incoming folder is empty, and the next upload works."""
    settings = Settings(
        data_dir=tmp_path / "data", api_keys=f"{KEY_A}=team-a", workers=0,
        public_base_url="http://testserver",
    )  # fmt: skip
    real_begin = UploadStore.begin

    def begin_on_full_disk(self: UploadStore, max_bytes: int) -> Any:
        part = real_begin(self, max_bytes)
        part._file = _FillingFile(part._file, room=16)  # type: ignore[assignment]
        return part

    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        incoming = settings.store.data_dir / "uploads" / INCOMING_DIR
        monkeypatch.setattr(UploadStore, "begin", begin_on_full_disk)
        r = upload(client, form(get_policy(client)), data=b"P" * 4096)
        assert r.status_code >= 500, r.text
        body = r.json()
        assert body["code"].startswith("InternalError") and body["request_id"], body
        assert _parts(incoming) == []
        monkeypatch.setattr(UploadStore, "begin", real_begin)
        ok = upload(client, form(get_policy(client), name="dog.png"))
        assert ok.status_code == 200, ok.text
        assert _parts(incoming) == []
