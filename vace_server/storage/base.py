"""The storage seam: where results (and, with object storage, uploads) live.

`VACE_STORAGE_URL` picks the implementation (`runtime.open_storage`): unset or a folder is
`LocalStorage` (files under the data folder, links signed by us and served by the API);
`s3://bucket/prefix` is `S3Storage` (any S3-compatible service; links are presigned GETs)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol
from urllib.parse import urlsplit
from urllib.request import url2pathname

from vace_server.settings import storage_url_problem


class Storage(Protocol):
    """Objects addressed by relative, slash-separated keys (never absolute, no `..`)."""

    def put_file(self, key: str, source: Path) -> None:
        """Stores the content of `source` as `key` (replacing it). Raises ValueError (bad key),
        OSError / the backend's errors when the write fails."""
        ...

    def delete(self, key: str) -> None:
        """Removes `key`; a missing key is fine."""
        ...

    def exists(self, key: str) -> bool: ...

    def open(self, key: str) -> BinaryIO:
        """A binary stream of `key`'s content, to be closed by the caller.
        Raises FileNotFoundError when there is no such object."""
        ...

    def url_for(self, key: str, *, expires_ms: int) -> str:
        """An absolute URL that GETs `key` without Authorization until `expires_ms` (epoch ms)
        or earlier (a backend may cap the lifetime)."""
        ...


def check_key(key: str) -> None:
    """Raises ValueError unless `key` is relative and slash-separated without empty, `.` or
    `..` segments, backslashes or control characters."""
    if not key or key.startswith("/") or "\\" in key:
        raise ValueError(f"bad storage key {key!r}")
    if any(ord(ch) < 0x20 or ch == "\x7f" for ch in key):
        raise ValueError(f"bad storage key {key!r}")
    if any(part in ("", ".", "..") for part in key.split("/")):
        raise ValueError(f"bad storage key {key!r}")


@dataclass(frozen=True)
class S3Location:
    bucket: str
    prefix: str  # "" or "a/b", without leading or trailing slash

    def under(self, sub: str) -> S3Location:
        return S3Location(self.bucket, f"{self.prefix}/{sub}" if self.prefix else sub)


def parse_storage_url(url: str | None, data_dir: Path) -> Path | S3Location:
    """What `VACE_STORAGE_URL` names: the output folder (unset → `data_dir/outputs`; a path or
    `file://` URL) or an S3 bucket and key prefix (`s3://bucket[/prefix]`).

    Raises: ValueError (another scheme, an s3:// URL without a bucket)."""
    if not url:
        return data_dir / "outputs"
    if problem := storage_url_problem(url):
        raise ValueError(f"VACE_STORAGE_URL {url!r}: {problem}")
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "s3":
        prefix = parts.path.strip("/")
        if prefix:
            check_key(prefix)
        return S3Location(parts.netloc, prefix)
    if scheme == "file":
        return Path(url2pathname(parts.path))
    return Path(url)  # a folder (a one-letter scheme is a Windows drive)
