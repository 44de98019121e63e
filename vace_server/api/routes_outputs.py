"""Download of results through signed, expiring URLs (no Authorization, like presigned OSS).

Only for the local-folder storage: with S3 storage, `video_url` points at the object store."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse

from vace_server.api.context import ctx
from vace_server.api.wire_values import parse_decimal
from vace_server.clock import wall_clock_ms
from vace_server.errors import AccessDenied, NotFound
from vace_server.storage.local import OUTPUT_ROUTE, LocalStorage

router = APIRouter()

LINK_REFUSED = "Request has expired or its signature does not match."


@router.get(OUTPUT_ROUTE + "/{key:path}")
def download_output(key: str, request: Request) -> FileResponse:
    storage = ctx(request).storage
    if not isinstance(storage, LocalStorage):
        raise NotFound()
    # A malformed expiry or signature (non-ASCII, overlong, not digits) is just a refused link,
    # never an error further down: the link is the whole credential.
    expires_ms = parse_decimal(request.query_params.get("expires", ""))
    signature = request.query_params.get("signature", "")
    if expires_ms is None or not storage.verify(key, expires_ms, signature, now_ms=wall_clock_ms()):
        raise AccessDenied(LINK_REFUSED)
    try:
        path = storage.path_for(key)
    except ValueError:
        raise NotFound() from None
    if not path.is_file():
        raise NotFound()
    return FileResponse(path, media_type="video/mp4", filename=path.name)
