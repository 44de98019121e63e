"""Temporary uploads on the store side: the rows of the `uploads` table, and `UploadStore`,
which pairs each row with its file (kept by a `storage.uploads.UploadFiles` backend).

An upload's row binds it to the account and the model of the policy it was uploaded with (the
key the API gives that model: both names of one model give one key), for 48 hours. Uploads are
never overwritten: the row is inserted first (the primary key makes a taken key fail), then the
file is placed without replacing anything.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import BinaryIO

from sqlalchemy import Engine, delete, insert, select
from sqlalchemy.exc import IntegrityError

from vace_server.clock import Clock, wall_clock_ms
from vace_server.settings import Settings
from vace_server.storage.uploads import (
    IncomingFolder,
    LocalUploadFiles,
    PartialUpload,
    UploadFiles,
    upload_files_for,
)
from vace_server.tasks.models import uploads

log = logging.getLogger(__name__)

UPLOAD_TTL_MS = 48 * 3_600_000


class UploadExists(Exception):
    """The key is already taken (uploads never overwrite)."""


@dataclass(frozen=True)
class UploadRecord:
    key: str
    account: str
    model: str
    size_bytes: int
    created_ms: int
    expires_ms: int


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
        self._incoming = IncomingFolder(self.root)

    @classmethod
    def from_settings(
        cls, settings: Settings, engine: Engine, *, clock: Clock = wall_clock_ms
    ) -> UploadStore:
        """The store on `engine` (the caller's database), with files in `data_dir/uploads` or,
        when `storage_url` is s3://bucket/prefix, under `prefix/uploads/`. Side effects:
        creates the folder (partial uploads live there)."""
        files = upload_files_for(settings)
        return cls(engine, settings.store.data_dir / "uploads", clock=clock, files=files)

    def path_for(self, key: str) -> Path:
        """The local file of `key` (folder backend only). Raises ValueError for keys escaping
        the root or the incoming dir, TypeError when files live in an object store."""
        if not isinstance(self.files, LocalUploadFiles):
            raise TypeError("uploads are not kept in a local folder")
        return self.files.path_for(key)

    # ------------------------------------------------------------------ receiving
    def begin(self, max_bytes: int) -> PartialUpload:
        """A new temporary file for an incoming upload. Side effects: creates it."""
        return self._incoming.begin(max_bytes)

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
        closed by the caller; None when not live or its file is missing. This is the
        `media.uploaded.UploadResolver` the worker's media source reads `oss://` keys with."""
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
        self._incoming.sweep()
        return keys
