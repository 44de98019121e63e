"""Local-folder output storage with HMAC-signed, expiring download URLs served by the API."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
import shutil
from pathlib import Path
from typing import BinaryIO
from urllib.parse import quote, urlencode

OUTPUT_ROUTE = "/api/v1/outputs"


class LocalStorage:
    """`Storage` in a folder: objects under `root`; keys are relative, slash-separated, never
    absolute. Links are HMAC-signed and served by the API (`routes_outputs`)."""

    def __init__(self, root: Path, *, public_base_url: str, secret: bytes | None) -> None:
        """`secret`: None in a process that signs no links (a worker only writes and deletes)."""
        self.root = root.resolve()
        self.public_base_url = public_base_url.rstrip("/")
        self._secret = secret
        self.root.mkdir(parents=True, exist_ok=True)

    def path_for(self, key: str) -> Path:
        """Returns the file path of `key`. Raises ValueError for keys escaping the root."""
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root) or path == self.root:
            raise ValueError(f"bad storage key {key!r}")
        return path

    def put_file(self, key: str, source: Path) -> None:
        """Copies `source` to `key` atomically, through a private `<name>.<random>.part` file
        that is removed again when anything fails (a full disk, an I/O error).

        Raises: OSError (the copy failed; nothing of it is left), ValueError (bad key).
        Side effects: writes under root."""
        target = self.path_for(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f"{target.name}.{secrets.token_hex(8)}.part")
        try:
            shutil.copyfile(source, tmp)
            os.replace(tmp, target)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def delete(self, key: str) -> None:
        """Removes `key` (missing is fine) and its now-empty parent folder."""
        path = self.path_for(key)
        path.unlink(missing_ok=True)
        with contextlib.suppress(OSError):  # not empty, or already gone
            path.parent.rmdir()

    def exists(self, key: str) -> bool:
        return self.path_for(key).is_file()

    def open(self, key: str) -> BinaryIO:
        """Raises FileNotFoundError (missing), ValueError (bad key)."""
        return self.path_for(key).open("rb")

    def url_for(self, key: str, *, expires_ms: int) -> str:
        """`signed_url`: valid until exactly `expires_ms`."""
        return self.signed_url(key, expires_ms=expires_ms)

    def signed_url(self, key: str, *, expires_ms: int) -> str:
        """Absolute URL valid until `expires_ms` (epoch ms); needs no Authorization."""
        query = urlencode({"expires": str(expires_ms), "signature": self._sign(key, expires_ms)})
        return f"{self.public_base_url}{OUTPUT_ROUTE}/{quote(key)}?{query}"

    def verify(self, key: str, expires_ms: int, signature: str, *, now_ms: int) -> bool:
        """True when `signature` is ours for (key, expires) and the link has not expired."""
        if now_ms >= expires_ms:
            return False
        # Bytes, not str: compare_digest refuses a str with non-ASCII characters (TypeError).
        given = signature.encode("utf-8", "surrogatepass")
        return hmac.compare_digest(self._sign(key, expires_ms).encode(), given)

    def _sign(self, key: str, expires_ms: int) -> str:
        if self._secret is None:
            raise RuntimeError("this process holds no URL-signing secret (workers sign no links)")
        msg = f"{key}\n{expires_ms}".encode("utf-8", "surrogatepass")
        return hmac.new(self._secret, msg, hashlib.sha256).hexdigest()


def load_or_create_secret(data_dir: Path, configured: str | None) -> bytes:
    """The URL-signing secret: configured, else generated once into data_dir (mode 0600)."""
    if configured:
        return configured.encode()
    path = data_dir / "url-signing.secret"
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process won the race
            return path.read_text().strip().encode()
        with os.fdopen(fd, "w") as f:
            f.write(os.urandom(32).hex())
    return path.read_text().strip().encode()
