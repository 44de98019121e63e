"""Temporary uploads (api-contract §10): the files behind `oss://<key>` media URLs.

An upload has one row in `uploads` binding it to the account and the model of the policy it was
uploaded with (the key the API gives that model: both names of one model give one key), for
48 hours, and one file kept by an `UploadFiles` backend: a
local folder (`<root>/<key>`, the default) or, with `VACE_STORAGE_URL=s3://...`, an object store
(`<prefix>/uploads/<key>`). Uploads are never overwritten: the row is inserted first (the
primary key makes a taken key fail), then the file is placed without replacing anything (a hard
link locally, `If-None-Match: *` on S3). Incoming bytes always stream to a private temporary
file under `<root>/.incoming` first.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Protocol

from sqlalchemy import BigInteger, Column, Engine, Index, String, Table, delete, insert, select
from sqlalchemy.exc import IntegrityError

from vace_server.settings import Settings
from vace_server.storage.base import S3Location, parse_storage_url
from vace_server.tasks import db
from vace_server.tasks.models import metadata
from vace_server.tasks.store import Clock, wall_clock_ms

if TYPE_CHECKING:
    from vace_server.storage.s3 import S3Storage

log = logging.getLogger(__name__)

UPLOAD_TTL_MS = 48 * 3_600_000
INCOMING_DIR = ".incoming"  # partial uploads; keys never start with "."
STALE_INCOMING_SECONDS = 3_600.0

uploads = Table(
    "uploads",
    metadata,
    Column("key", String(512), primary_key=True),
    Column("account", String(128), nullable=False),
    Column("model", String(64), nullable=False),
    Column("size_bytes", BigInteger, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Column("expires_ms", BigInteger, nullable=False),
    Index("ix_uploads_expires", "expires_ms"),
)


class UploadExists(Exception):
    """The key is already taken (uploads never overwrite)."""


class UploadTooLarge(Exception):
    """The file grew past the policy's maximum size."""


@dataclass(frozen=True)
class UploadRecord:
    key: str
    account: str
    model: str
    size_bytes: int
    created_ms: int
    expires_ms: int


class PartialUpload:
    """A file being received into a private temporary file, capped at `max_bytes`."""

    def __init__(self, path: Path, max_bytes: int) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.size = 0
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            self._file: BinaryIO = os.fdopen(fd, "wb")
        except BaseException:
            os.close(fd)
            path.unlink(missing_ok=True)
            raise

    def write(self, data: bytes) -> None:
        """Appends `data`. Raises UploadTooLarge (nothing more is written) past `max_bytes`;
        OSError when the write fails (a full disk): the partial file is removed first."""
        if self.size + len(data) > self.max_bytes:
            raise UploadTooLarge(f"upload exceeds {self.max_bytes} bytes")
        try:
            self._file.write(data)
        except BaseException:
            self.discard()
            raise
        self.size += len(data)

    def close(self) -> None:
        """Flushes and closes the file. Raises OSError when the final flush fails (a full
        disk): the partial file is removed first."""
        if not self._file.closed:
            try:
                self._file.close()
            except BaseException:
                self.path.unlink(missing_ok=True)
                raise

    def discard(self) -> None:
        """Closes and removes the temporary file (idempotent; a failing close still removes
        it)."""
        try:
            with contextlib.suppress(OSError):  # already reported by the failed write
                self.close()
        finally:
            self.path.unlink(missing_ok=True)


class UploadFiles(Protocol):
    """Where the bytes of uploads live (the rows stay in the `uploads` table)."""

    def check_key(self, key: str) -> None:
        """Raises ValueError for a key this backend refuses."""
        ...

    def place(self, source: Path, key: str) -> None:
        """Makes `source`'s content the file of `key`, never replacing an existing one.
        Raises FileExistsError (key taken), ValueError (bad key)."""
        ...

    def open(self, key: str) -> BinaryIO | None:
        """A stream of `key`'s content (closed by the caller), None when it is missing."""
        ...

    def remove(self, key: str) -> None:
        """Removes the file of `key`; missing is fine."""
        ...


class LocalUploadFiles:
    """Uploads as files `<root>/<key>`; `<root>/.incoming` is reserved for partial files."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self._incoming = self.root / INCOMING_DIR

    def path_for(self, key: str) -> Path:
        """The file of `key`. Raises ValueError for keys escaping the root or the incoming dir."""
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root) or path == self.root:
            raise ValueError(f"bad upload key {key!r}")
        if path.is_relative_to(self._incoming):
            raise ValueError(f"bad upload key {key!r}")
        return path

    def check_key(self, key: str) -> None:
        self.path_for(key)

    def place(self, source: Path, key: str) -> None:
        target = self.path_for(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        _place_exclusively(source, target)

    def open(self, key: str) -> BinaryIO | None:
        try:
            return self.path_for(key).open("rb")
        except (ValueError, FileNotFoundError, IsADirectoryError):
            return None

    def remove(self, key: str) -> None:
        """Removes the file of `key` and the folders it leaves empty (never `root`)."""
        try:
            path = self.path_for(key)
        except ValueError:
            return
        path.unlink(missing_ok=True)
        parent = path.parent
        while parent != self.root and parent.is_relative_to(self.root):
            try:
                parent.rmdir()
            except OSError:  # not empty, or already gone
                break
            parent = parent.parent


class ObjectUploadFiles:
    """Uploads as objects of an S3 store (`S3Storage` rooted at `<prefix>/uploads`)."""

    def __init__(self, objects: S3Storage) -> None:
        self.objects = objects

    def check_key(self, key: str) -> None:
        self.objects.object_key(key)

    def place(self, source: Path, key: str) -> None:
        self.objects.put_new(key, source)

    def open(self, key: str) -> BinaryIO | None:
        try:
            return self.objects.open(key)
        except (ValueError, FileNotFoundError):
            return None

    def remove(self, key: str) -> None:
        try:
            self.objects.delete(key)
        except ValueError:
            return


class UploadStore:
    """Upload rows in the `uploads` table plus their files in `files` (default: the folder
    `root`); partial uploads always go to `root/.incoming`."""

    def __init__(
        self,
        engine: Engine,
        root: Path,
        *,
        ttl_ms: int = UPLOAD_TTL_MS,
        clock: Clock = wall_clock_ms,
        files: UploadFiles | None = None,
    ) -> None:
        self.engine = engine
        self.root = root.resolve()
        self.ttl_ms = ttl_ms
        self._now = clock
        self.files: UploadFiles = files or LocalUploadFiles(self.root)
        self._incoming = self.root / INCOMING_DIR
        self._incoming.mkdir(parents=True, exist_ok=True)

    @classmethod
    def from_settings(
        cls, settings: Settings, engine: Engine | None = None, *, clock: Clock = wall_clock_ms
    ) -> UploadStore:
        """The store on the configured database (a new engine unless given), with files in
        `data_dir/uploads` or, when `storage_url` is s3://bucket/prefix, under
        `prefix/uploads/`. Side effects: creates the folder (partial uploads live there)."""
        engine = engine or db.make_engine(settings.resolved_database_url())
        files: UploadFiles | None = None
        where = parse_storage_url(settings.storage_url, settings.data_dir)
        if isinstance(where, S3Location):
            from vace_server.storage.s3 import S3Storage

            files = ObjectUploadFiles(S3Storage.from_settings(settings, where.under("uploads")))
        return cls(engine, settings.data_dir / "uploads", clock=clock, files=files)

    def path_for(self, key: str) -> Path:
        """The local file of `key` (folder backend only). Raises ValueError for keys escaping
        the root or the incoming dir, TypeError when files live in an object store."""
        if not isinstance(self.files, LocalUploadFiles):
            raise TypeError("uploads are not kept in a local folder")
        return self.files.path_for(key)

    # ------------------------------------------------------------------ receiving
    def begin(self, max_bytes: int) -> PartialUpload:
        """A new temporary file for an incoming upload. Side effects: creates it."""
        return PartialUpload(self._incoming / f"{secrets.token_hex(16)}.part", max_bytes)

    def commit(self, part: PartialUpload, key: str, *, account: str, model: str) -> UploadRecord:
        """Records a finished upload under `key`, then places its file without ever replacing
        one. The partial file is discarded in every case.

        Returns: the record. Raises: UploadExists (key taken: it has a row, or the backend
        already holds a file), ValueError (bad key). Side effects: one INSERT (removed again
        when placing fails), the file appears in the backend."""
        part.close()
        try:
            self.files.check_key(key)
            rec = self.record(key, account=account, model=model, size_bytes=part.size)
            try:
                self.files.place(part.path, key)
            except FileExistsError:
                self._forget(key)
                raise UploadExists(key) from None
            except BaseException:
                self._forget(key)
                raise
            return rec
        finally:
            part.discard()

    def record(self, key: str, *, account: str, model: str, size_bytes: int) -> UploadRecord:
        """Inserts the row of an upload, valid for `ttl_ms` from now.

        Returns: the record. Raises: UploadExists when `key` already has a row."""
        now = self._now()
        rec = UploadRecord(
            key=key,
            account=account,
            model=model,
            size_bytes=size_bytes,
            created_ms=now,
            expires_ms=now + self.ttl_ms,
        )
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(uploads).values(**asdict(rec)))
        except IntegrityError:
            raise UploadExists(key) from None
        return rec

    def _forget(self, key: str) -> None:
        """Deletes the row of an upload whose file could not be placed."""
        with self.engine.begin() as conn:
            conn.execute(delete(uploads).where(uploads.c.key == key))

    # ------------------------------------------------------------------ reading
    def is_live(self, key: str, *, account: str, model: str) -> bool:
        """True when `key` has a row that has not expired and belongs to `account` and
        `model` (compared as given: the API hands both sides the same model key)."""
        cond = (
            uploads.c.key == key,
            uploads.c.account == account,
            uploads.c.model == model,
            uploads.c.expires_ms > self._now(),
        )
        with self.engine.connect() as conn:
            row = conn.execute(select(uploads.c.key).where(*cond)).first()
        return row is not None

    def open(self, key: str, *, account: str, model: str) -> BinaryIO | None:
        """A stream of the file of a live upload of `account` and `model` (see `is_live`),
        closed by the caller; None when not live or its file is missing."""
        if not self.is_live(key, account=account, model=model):
            return None
        return self.files.open(key)

    def resolve(self, key: str, *, account: str, model: str) -> Path | None:
        """The local file of a live upload (folder backend only; see `open` for any backend);
        None when not live or the file is missing."""
        if not self.is_live(key, account=account, model=model):
            return None
        try:
            path = self.path_for(key)
        except ValueError:
            return None
        return path if path.is_file() else None

    # ------------------------------------------------------------------ housekeeping
    def purge_expired(self) -> list[str]:
        """Deletes expired uploads (rows, then files) and stale partial files.

        Returns: the purged keys. Side effects: DELETEs, file / object removals (a failed
        removal is logged; the row is gone either way)."""
        now = self._now()
        expired = uploads.c.expires_ms <= now
        with self.engine.begin() as conn:
            keys = [r[0] for r in conn.execute(select(uploads.c.key).where(expired))]
            if keys:
                conn.execute(delete(uploads).where(expired, uploads.c.key.in_(keys)))
        for key in keys:
            try:
                self.files.remove(key)
            except Exception:
                log.exception("could not remove the file of expired upload %s", key)
        self._sweep_incoming()
        return keys

    def _sweep_incoming(self) -> None:
        """Removes partial files left behind by a crashed receiver."""
        cutoff = time.time() - STALE_INCOMING_SECONDS
        for entry in self._incoming.glob("*.part"):
            with contextlib.suppress(OSError):
                if entry.stat().st_mtime < cutoff:
                    entry.unlink()


def _place_exclusively(source: Path, target: Path) -> None:
    """Makes `source`'s content appear at `target` atomically; never replaces an existing
    `target` (raises FileExistsError). Hard link where supported, else an O_EXCL placeholder
    that is then replaced by the finished file (we own the placeholder, so no race)."""
    try:
        os.link(source, target)
        return
    except FileExistsError:
        raise
    except OSError:  # file system without hard links
        pass
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.close(fd)
    try:
        os.replace(source, target)
    except BaseException:
        target.unlink(missing_ok=True)  # our empty placeholder, never someone else's file
        raise
