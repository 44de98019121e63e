"""Upload policies (docs/contract.md §10): what getPolicy hands out and the receiver verifies.

The policy is the whole credential of an upload (the SDK sends no API key with it): a base64
JSON token naming the account, the normalised model, the key prefix, the expiry and the size
limit, plus an HMAC-SHA256 signature over the token with a key derived from the server secret.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from vace_server.errors import AccessDenied, ServiceError

POLICY_SECONDS = 300
MAX_FILE_MB = 100
MAX_FILE_BYTES = MAX_FILE_MB * 1024 * 1024
CAPACITY_LIMIT_MB = 999_999_999  # upstream's value; not enforced
OSS_ACCESS_KEY_ID = "vace-server"  # echoed back by the client; identifies nothing secret
UPLOAD_DIR_ROOT = "dashscope-instant"
MAX_NAME_BYTES = 255  # a file name on common file systems

POLICY_EXPIRED = "Invalid according to Policy: Policy expired."
SIGNATURE_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. "
    "Check the policy and Signature fields returned by getPolicy."
)
UNKNOWN_ACCESS_KEY = "The OSS Access Key Id you provided does not exist in our records."

_SIGNING_CONTEXT = b"vace-server upload policy v1"


class EntityTooLarge(ServiceError):
    code = "EntityTooLarge"
    status = 400
    default_message = f"Your proposed upload exceeds the maximum allowed size of {MAX_FILE_MB} MB."


class FileAlreadyExists(ServiceError):
    code = "FileAlreadyExists"
    status = 409
    default_message = "The object you specified already exists and can not be overwritten."


@dataclass(frozen=True)
class UploadPolicy:
    account: str
    model: str
    upload_dir: str
    expires_ms: int
    max_bytes: int


class PolicySigner:
    """Signs and verifies policy tokens. The signing key is derived from the server secret so
    a policy signature can never double as an output-URL signature (or the reverse)."""

    def __init__(self, secret: bytes) -> None:
        self._key = hmac.new(secret, _SIGNING_CONTEXT, hashlib.sha256).digest()

    def issue(self, account: str, model: str, *, now_ms: int) -> tuple[UploadPolicy, str, str]:
        """A fresh policy for `account`/`model` with a unique upload_dir.

        Returns: (policy, token, signature)."""
        day = datetime.fromtimestamp(now_ms / 1000, tz=UTC).strftime("%Y-%m-%d")
        upload_dir = f"{UPLOAD_DIR_ROOT}/{secrets.token_hex(16)}/{day}/{secrets.token_hex(16)}"
        policy = UploadPolicy(
            account=account,
            model=model,  # the caller gives the upload key (ServedNames.upload_model)
            upload_dir=upload_dir,
            expires_ms=now_ms + POLICY_SECONDS * 1000,
            max_bytes=MAX_FILE_BYTES,
        )
        token = self.encode(policy)
        return policy, token, self.sign(token)

    @staticmethod
    def encode(policy: UploadPolicy) -> str:
        raw = json.dumps(asdict(policy), separators=(",", ":"), sort_keys=True)
        return base64.b64encode(raw.encode()).decode("ascii")

    def sign(self, token: str) -> str:
        digest = hmac.new(self._key, token.encode(), hashlib.sha256).digest()
        return base64.b64encode(digest).decode("ascii")

    def verify(self, token: str, signature: str, *, now_ms: int) -> UploadPolicy:
        """The policy of a signed, unexpired token.

        Raises: AccessDenied (signature mismatch, undecodable token, expired policy)."""
        expected = self.sign(token).encode()
        if not hmac.compare_digest(expected, signature.encode("utf-8", "replace")):
            raise AccessDenied(SIGNATURE_MISMATCH)
        policy = _decode(token)
        if now_ms >= policy.expires_ms:
            raise AccessDenied(POLICY_EXPIRED)
        return policy


def _decode(token: str) -> UploadPolicy:
    try:
        data: Any = json.loads(base64.b64decode(token, validate=True))
        policy = UploadPolicy(**data)
    except (binascii.Error, ValueError, TypeError) as exc:
        raise AccessDenied(SIGNATURE_MISMATCH) from exc
    if not all(isinstance(getattr(policy, f), str) for f in ("account", "model", "upload_dir")):
        raise AccessDenied(SIGNATURE_MISMATCH)
    if not all(isinstance(getattr(policy, f), int) for f in ("expires_ms", "max_bytes")):
        raise AccessDenied(SIGNATURE_MISMATCH)
    return policy


def check_key(key: str, upload_dir: str) -> None:
    """A key must be `upload_dir/<file name>`: one path component, no `.`/`..`, no slashes or
    backslashes, no control characters, at most 255 bytes (UTF-8).

    Raises: AccessDenied."""
    prefix = upload_dir + "/"
    if not key.startswith(prefix):
        raise AccessDenied(
            f'Invalid according to Policy: Policy Condition failed: ["starts-with", "$key", '
            f'"{prefix}"]'
        )
    name = key[len(prefix) :]
    unsafe = (
        not name
        or len(name.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES
        or name in (".", "..")
        or "/" in name
        or "\\" in name
        or any(ord(ch) < 32 or ord(ch) == 127 for ch in name)
    )
    if unsafe:
        raise AccessDenied(
            f"Invalid according to Policy: the key must be {prefix}<file name>, a single safe "
            "file name."
        )


def policy_data(
    token: str, signature: str, policy: UploadPolicy, upload_host: str
) -> dict[str, Any]:
    """The `data` object of the getPolicy answer, with the types of upstream's example."""
    return {
        "policy": token,
        "signature": signature,
        "upload_dir": policy.upload_dir,
        "upload_host": upload_host,
        "expire_in_seconds": POLICY_SECONDS,
        "max_file_size_mb": MAX_FILE_MB,
        "capacity_limit_mb": CAPACITY_LIMIT_MB,
        "oss_access_key_id": OSS_ACCESS_KEY_ID,
        "x_oss_object_acl": "private",
        "x_oss_forbid_overwrite": "true",
    }
