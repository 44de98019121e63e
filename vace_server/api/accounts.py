"""API keys and the accounts they belong to."""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from vace_server.errors import InvalidApiKey

log = logging.getLogger(__name__)

ANONYMOUS = "anonymous"
GENERATED_KEY_FILE = "api_key"


@dataclass(frozen=True)
class Caller:
    """Who made a request: the account owning the key, and a stable, non-secret key id."""

    account: str
    api_key_id: str


def key_id(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:16]


class KeyRing:
    """Maps API keys to accounts. `auth_disabled` accepts any or no key as one anonymous caller."""

    def __init__(self, keys: dict[str, str], *, auth_disabled: bool = False) -> None:
        self._keys = dict(keys)
        self.auth_disabled = auth_disabled

    @classmethod
    def parse(cls, spec: str, *, auth_disabled: bool = False) -> KeyRing:
        """`spec` is comma-separated `key` or `key=account`; a bare key is its own account."""
        keys: dict[str, str] = {}
        for entry in (e.strip() for e in spec.split(",")):
            if not entry:
                continue
            key, _, account = entry.partition("=")
            key = key.strip()
            keys[key] = account.strip() or f"acct-{key_id(key)}"
        return cls(keys, auth_disabled=auth_disabled)

    def __len__(self) -> int:
        return len(self._keys)

    def authenticate(self, authorization: str | None) -> Caller:
        """Returns the caller for an `Authorization` header value.

        Raises: InvalidApiKey ("No API-key provided." / "Invalid API-key provided.")."""
        if self.auth_disabled:
            return Caller(ANONYMOUS, ANONYMOUS)
        token = _bearer(authorization)
        if not token:
            raise InvalidApiKey("No API-key provided.")
        for key, account in self._keys.items():
            if hmac.compare_digest(key.encode(), token.encode()):
                return Caller(account, key_id(key))
        raise InvalidApiKey("Invalid API-key provided.")


def _bearer(header: str | None) -> str:
    if not header:
        return ""
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() == "bearer":
        return value.strip()
    return header.strip() if not value else ""


def load_or_generate_key(data_dir: Path) -> tuple[str, bool]:
    """The newcomer's key: read from data_dir, else generated and stored there (mode 0600).

    Returns (key, generated_now)."""
    path = data_dir / GENERATED_KEY_FILE
    if path.exists():
        return path.read_text().strip(), False
    data_dir.mkdir(parents=True, exist_ok=True)
    key = "sk-" + secrets.token_hex(16)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip(), False
    with os.fdopen(fd, "w") as f:
        f.write(key + "\n")
    return key, True
