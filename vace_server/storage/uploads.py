"""The bytes of temporary uploads (the files behind `oss://<key>` media URLs; docs/contract.md).

One file per upload, kept by an `UploadFiles` backend: a local folder (`<root>/<key>`, the
default) or, with `VACE_STORAGE_URL=s3://...`, an object store (`<prefix>/uploads/<key>`).
Files are placed without replacing anything (a hard link locally, `If-None-Match: *` on S3).
Incoming bytes always stream to a private temporary file under `<root>/.incoming` first.
The rows binding an upload to its account, model and expiry live with the other tables, in
`vace_server.tasks.uploads`, which composes the two.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import time
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Protocol

from vace_server.settings import Settings
from vace_server.storage.base import S3Location, parse_storage_url

if TYPE_CHECKING:
    from vace_server.storage.s3 import S3Storage

INCOMING_DIR = ".incoming"  # partial uploads; keys never start with "."
STALE_INCOMING_SECONDS = 3_600.0


class UploadTooLarge(Exception):
    """The file grew past the policy's maximum size."""


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


def upload_files_for(settings: Settings) -> UploadFiles | None:
    """The object-store backend when `storage_url` is s3://bucket/prefix (files under
    `prefix/uploads/`); None for the default, the local folder `data_dir/uploads`.

    Side effects: S3 builds a boto3 client (no request is made)."""
    where = parse_storage_url(settings.storage.storage_url, settings.store.data_dir)
    if not isinstance(where, S3Location):
        return None
    from vace_server.storage.s3 import S3Storage

    return ObjectUploadFiles(S3Storage.from_settings(settings, where.under("uploads")))


class IncomingFolder:
    """`<root>/.incoming`: the private temporary files uploads are received into."""

    def __init__(self, root: Path) -> None:
        self.path = root.resolve() / INCOMING_DIR
        self.path.mkdir(parents=True, exist_ok=True)

    def begin(self, max_bytes: int) -> PartialUpload:
        """A new temporary file for an incoming upload. Side effects: creates it."""
        return PartialUpload(self.path / f"{secrets.token_hex(16)}.part", max_bytes)

    def sweep(self) -> None:
        """Removes partial files left behind by a crashed receiver."""
        cutoff = time.time() - STALE_INCOMING_SECONDS
        for entry in self.path.glob("*.part"):
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
