"""Temporary uploads (api-contract §10): the files behind `oss://<key>` media URLs.

A file lives at `<root>/<key>` and has one row in `uploads` binding it to the account and the
(normalised) model of the policy it was uploaded with, for 48 hours. Files are never
overwritten: a finished upload is hard-linked into place, which fails if the key exists.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from sqlalchemy import BigInteger, Column, Engine, Index, String, Table, delete, insert, select
from sqlalchemy.exc import IntegrityError

from vace_server.settings import Settings
from vace_server.tasks import db
from vace_server.tasks.models import metadata
from vace_server.tasks.store import Clock, wall_clock_ms

log = logging.getLogger(__name__)

UPLOAD_TTL_MS = 48 * 3_600_000
INCOMING_DIR = ".incoming"  # partial uploads; keys never start with "."
STALE_INCOMING_SECONDS = 3_600.0

# Both upstream names of the VACE model are one model (api-contract §1).
VACE_MODEL_NAMES = frozenset({"wanx2.1-vace-plus", "wan2.1-vace-plus"})
CANONICAL_MODEL = "wanx2.1-vace-plus"

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


def normalise_model(name: str) -> str:
    """The model an upload is bound to: both VACE names give the same value."""
    return CANONICAL_MODEL if name in VACE_MODEL_NAMES else name


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
        self._file = os.fdopen(fd, "wb")

    def write(self, data: bytes) -> None:
        """Appends `data`. Raises UploadTooLarge (nothing more is written) past `max_bytes`."""
        if self.size + len(data) > self.max_bytes:
            raise UploadTooLarge(f"upload exceeds {self.max_bytes} bytes")
        self._file.write(data)
        self.size += len(data)

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()

    def discard(self) -> None:
        """Closes and removes the temporary file (idempotent)."""
        self.close()
        self.path.unlink(missing_ok=True)


class UploadStore:
    """Upload files under `root` plus their rows in the `uploads` table."""

    def __init__(
        self,
        engine: Engine,
        root: Path,
        *,
        ttl_ms: int = UPLOAD_TTL_MS,
        clock: Clock = wall_clock_ms,
    ) -> None:
        self.engine = engine
        self.root = root.resolve()
        self.ttl_ms = ttl_ms
        self._now = clock
        self._incoming = self.root / INCOMING_DIR
        self._incoming.mkdir(parents=True, exist_ok=True)

    @classmethod
    def from_settings(cls, settings: Settings, engine: Engine | None = None) -> UploadStore:
        """The store in `data_dir/uploads` on the configured database (a new engine unless
        given). Side effects: creates the folder."""
        engine = engine or db.make_engine(settings.resolved_database_url())
        return cls(engine, settings.data_dir / "uploads")

    def path_for(self, key: str) -> Path:
        """The file of `key`. Raises ValueError for keys escaping the root or the incoming dir."""
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root) or path == self.root:
            raise ValueError(f"bad upload key {key!r}")
        if path.is_relative_to(self._incoming):
            raise ValueError(f"bad upload key {key!r}")
        return path

    # ------------------------------------------------------------------ receiving
    def begin(self, max_bytes: int) -> PartialUpload:
        """A new temporary file for an incoming upload. Side effects: creates it."""
        return PartialUpload(self._incoming / f"{secrets.token_hex(16)}.part", max_bytes)

    def commit(self, part: PartialUpload, key: str, *, account: str, model: str) -> UploadRecord:
        """Moves a finished upload to `key` without ever replacing a file, then records it.

        Returns: the record. Raises: UploadExists (key taken; the partial file is discarded),
        ValueError (bad key). Side effects: the file appears at `path_for(key)`, one INSERT."""
        part.close()
        target = self.path_for(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            _place_exclusively(part.path, target)
        except FileExistsError:
            raise UploadExists(key) from None
        finally:
            part.discard()
        try:
            return self.record(key, account=account, model=model, size_bytes=part.size)
        except BaseException:
            self._remove_file(key)
            raise

    def record(self, key: str, *, account: str, model: str, size_bytes: int) -> UploadRecord:
        """Inserts the row of an upload, valid for `ttl_ms` from now.

        Returns: the record. Raises: UploadExists when `key` already has a row."""
        now = self._now()
        rec = UploadRecord(
            key=key,
            account=account,
            model=normalise_model(model),
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

    # ------------------------------------------------------------------ reading
    def resolve(self, key: str, *, account: str, model: str) -> Path | None:
        """The file of `key` if it exists, has not expired, and belongs to `account` and
        (normalised) `model`; None otherwise."""
        cond = (
            uploads.c.key == key,
            uploads.c.account == account,
            uploads.c.model == normalise_model(model),
            uploads.c.expires_ms > self._now(),
        )
        with self.engine.connect() as conn:
            row = conn.execute(select(uploads.c.key).where(*cond)).first()
        if row is None:
            return None
        try:
            path = self.path_for(key)
        except ValueError:
            return None
        return path if path.is_file() else None

    # ------------------------------------------------------------------ housekeeping
    def purge_expired(self) -> list[str]:
        """Deletes expired uploads (rows, then files) and stale partial files.

        Returns: the purged keys. Side effects: DELETEs, file removals."""
        now = self._now()
        expired = uploads.c.expires_ms <= now
        with self.engine.begin() as conn:
            keys = [r[0] for r in conn.execute(select(uploads.c.key).where(expired))]
            if keys:
                conn.execute(delete(uploads).where(expired, uploads.c.key.in_(keys)))
        for key in keys:
            self._remove_file(key)
        self._sweep_incoming()
        return keys

    def _remove_file(self, key: str) -> None:
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
    os.replace(source, target)
