"""`oss://<key>` media: files received through the temporary upload flow (docs/contract.md).

A key resolves only for the task's own account and upload model (`TaskSpec.upload_model`),
before it expires; anything else fails the task with `InvalidURL`, exactly like an unreachable
download. The bytes then go through the same checks as a download (size cap here, never reading
more than one byte past it, from a local file or an S3 object alike; sniffing and decoding by the
caller).

Which keys are live is the upload store's business (`vace_server.tasks.uploads.UploadStore`);
media/ only sees it as an `UploadResolver`, injected by whoever builds the media source (the
worker runtime), so this I/O leaf imports no database code."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import BinaryIO, Protocol

from vace_server.errors import InputField, InvalidFile, InvalidURL

log = logging.getLogger(__name__)

OSS_PREFIX = "oss://"


@dataclass(frozen=True)
class UploadScope:
    """Whose uploads a task may read."""

    account: str
    model: str


class UploadResolver(Protocol):
    """Opens the file of an upload that `account` may read for `model`."""

    def open(self, key: str, *, account: str, model: str) -> BinaryIO | None:
        """A stream (closed by the caller) of a live upload of `account` and `model`; None when
        the key is unknown, expired, another account's or model's, or its file is missing."""
        ...


def is_upload_url(url: str) -> bool:
    return url.startswith(OSS_PREFIX)


def read_upload(
    store: UploadResolver | None,
    scope: UploadScope | None,
    url: str,
    field: InputField,
    max_bytes: int,
) -> bytes:
    """The bytes of an uploaded file, at most `max_bytes`.

    Raises: InvalidURL (no task scope, unknown / expired key, another account's or model's),
    InvalidFile with code InvalidFile.Size (larger than `max_bytes`)."""
    key = url[len(OSS_PREFIX) :]
    stream = None
    if store is not None and scope is not None:
        stream = store.open(key, account=scope.account, model=scope.model)
    if stream is None:
        log.warning("%s: %s is not an upload of this task's account and model", field, url)
        raise InvalidURL(
            f"{InvalidURL.default_message} {field.mention} ({url}): no such upload for this "
            "API key and model; it may have expired (uploads last 48 hours), been made with "
            "another API key, or for another model. Upload the file again (getPolicy, then "
            "POST the file) with the same key and model as the task."
        )
    try:
        with stream:
            data = _read_at_most(stream, max_bytes + 1)
    except OSError as exc:  # purged between open and read, or the connection broke
        log.warning("%s: cannot read upload %s: %r", field, url, exc)
        raise InvalidURL(
            f"{InvalidURL.default_message} {field.mention} ({url}): the uploaded file could "
            "not be read (removed while the task ran?); upload it again."
        ) from exc
    if len(data) > max_bytes:
        log.warning("%s: upload %s exceeds %d bytes", field, url, max_bytes)
        raise InvalidFile(
            f"The file of {field.mention} exceeds the size limit of "
            f"{max_bytes / (1024 * 1024):g} MB.",
            code="InvalidFile.Size",
        )
    return data


def _read_at_most(stream: BinaryIO, limit: int) -> bytes:
    """Up to `limit` bytes (fewer only at the end of the stream); network streams may return
    short reads, so this loops."""
    chunks: list[bytes] = []
    left = limit
    while left > 0:
        chunk = stream.read(min(left, 1024 * 1024))
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)
