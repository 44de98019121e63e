"""`Storage` on an S3-compatible object store through boto3 (`VACE_STORAGE_URL=s3://bucket/prefix`).

Results live at `<prefix>/outputs/<key>`, uploads (`oss://` inputs) at `<prefix>/uploads/<key>`.
`url_for` hands out SigV4 presigned GET URLs; SigV4 caps their lifetime at 7 days, so a link
is valid until the task's expiry or for `s3_presign_max_seconds`, whichever comes first (every
query signs a fresh one). Endpoint, region, credentials and addressing style come from the
settings; unset credentials fall back to boto3's usual chain (environment, config files,
instance roles)."""

from __future__ import annotations

import math
import mimetypes
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from vace_server.clock import Clock, wall_clock_ms
from vace_server.storage.base import S3Location, check_key

if TYPE_CHECKING:
    from vace_server.settings import Settings

SIGV4_MAX_SECONDS = 7 * 24 * 3600
# Error codes meaning "the object is already there" for a put with If-None-Match: *.
_EXISTS_CODES = frozenset({"PreconditionFailed", "ConditionalRequestConflict", "412", "409"})
_MISSING_CODES = frozenset({"NoSuchKey", "NotFound", "404"})


def make_client(settings: Settings) -> Any:
    """A boto3 S3 client from the `s3_*` settings (boto3 imported here, only when used).

    Raises: ValueError (only one of access key id and secret set)."""
    import boto3
    from botocore.config import Config

    key_id, hidden = settings.storage.s3_access_key_id, settings.storage.s3_secret_access_key
    secret = hidden.get_secret_value() if hidden else None
    if bool(key_id) != bool(secret):
        raise ValueError("set both VACE_S3_ACCESS_KEY_ID and VACE_S3_SECRET_ACCESS_KEY, or neither")
    config = Config(
        signature_version="s3v4",
        s3={"addressing_style": settings.storage.s3_addressing_style},
        retries={"max_attempts": 5, "mode": "standard"},
        connect_timeout=10,
        read_timeout=60,
    )
    return boto3.session.Session().client(
        "s3",
        endpoint_url=settings.storage.s3_endpoint_url or None,
        region_name=settings.storage.s3_region or None,
        aws_access_key_id=key_id or None,
        aws_secret_access_key=secret or None,
        config=config,
    )


def error_code(exc: BaseException) -> str:
    """The S3 error code of a botocore ClientError ("" for anything else)."""
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return ""
    code = response.get("Error", {}).get("Code")
    if code:
        return str(code)
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return str(status or "")


class S3Storage:
    """Objects `<prefix>/<key>` in `bucket`. Thread-safe (one boto3 client, shared)."""

    def __init__(
        self,
        client: Any,
        location: S3Location,
        *,
        presign_max_seconds: int = SIGV4_MAX_SECONDS,
        clock: Clock = wall_clock_ms,
    ) -> None:
        self.client = client
        self.location = location
        self.presign_max_seconds = max(1, min(presign_max_seconds, SIGV4_MAX_SECONDS))
        self._now = clock

    @classmethod
    def from_settings(
        cls, settings: Settings, location: S3Location, *, clock: Clock = wall_clock_ms
    ) -> S3Storage:
        return cls(
            make_client(settings),
            location,
            presign_max_seconds=settings.storage.s3_presign_max_seconds,
            clock=clock,
        )

    def under(self, sub: str) -> S3Storage:
        """The same bucket and client with `sub` appended to the prefix."""
        return S3Storage(
            self.client,
            self.location.under(sub),
            presign_max_seconds=self.presign_max_seconds,
            clock=self._now,
        )

    @property
    def bucket(self) -> str:
        return self.location.bucket

    def object_key(self, key: str) -> str:
        """The object key of `key`. Raises ValueError for a bad key (see `check_key`)."""
        check_key(key)
        prefix = self.location.prefix
        return f"{prefix}/{key}" if prefix else key

    # ------------------------------------------------------------------ Storage
    def put_file(self, key: str, source: Path) -> None:
        """Uploads `source` as `key` (multipart when large), replacing any object."""
        self.client.upload_file(
            str(source),
            self.bucket,
            self.object_key(key),
            ExtraArgs={"ContentType": _content_type(key)},
        )

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self.object_key(key))

    def exists(self, key: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=self.object_key(key))
        except Exception as exc:
            if error_code(exc) in _MISSING_CODES:
                return False
            raise
        return True

    def open(self, key: str) -> BinaryIO:
        """The object's body as a stream (botocore StreamingBody). Raises FileNotFoundError."""
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self.object_key(key))
        except Exception as exc:
            if error_code(exc) in _MISSING_CODES:
                raise FileNotFoundError(key) from exc
            raise
        body: BinaryIO = response["Body"]
        return body

    def url_for(self, key: str, *, expires_ms: int) -> str:
        """A presigned GET, valid for the time left until `expires_ms`, at least 1 s and at most
        `presign_max_seconds` (SigV4 allows 7 days)."""
        url: str = self.client.generate_presigned_url(
            "get_object",
            Params={"Bucket": self.bucket, "Key": self.object_key(key)},
            ExpiresIn=self.presign_seconds(expires_ms),
        )
        return url

    def presign_seconds(self, expires_ms: int) -> int:
        left = math.ceil((expires_ms - self._now()) / 1000)
        return max(1, min(left, self.presign_max_seconds))

    # ------------------------------------------------------------------ uploads
    def put_new(self, key: str, source: Path) -> None:
        """Uploads `source` as `key` only if no such object exists (`If-None-Match: *`), streaming
        from the file. Raises FileExistsError when the service reports the object exists."""
        object_key = self.object_key(key)
        with source.open("rb") as body:
            try:
                self.client.put_object(
                    Bucket=self.bucket,
                    Key=object_key,
                    Body=body,
                    ContentType=_content_type(key),
                    IfNoneMatch="*",
                )
            except Exception as exc:
                if error_code(exc) in _EXISTS_CODES:
                    raise FileExistsError(key) from exc
                if error_code(exc) != "NotImplemented":
                    raise
            else:
                return
            # A service without conditional writes: the caller's table row is the only guard.
            body.seek(0)
            self.client.put_object(
                Bucket=self.bucket, Key=object_key, Body=body, ContentType=_content_type(key)
            )


def _content_type(key: str) -> str:
    return mimetypes.guess_type(key)[0] or "application/octet-stream"
