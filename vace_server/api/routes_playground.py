"""The browser playground: one static page (HTML + a vanilla JS module + CSS), no build step.

The files are package data under `vace_server/api/static/`; the page talks to the public API
with the key the user types in, exactly like any other client.
"""

from __future__ import annotations

from importlib import resources

from fastapi import APIRouter
from fastapi.responses import Response

from vace_server.errors import NotFound

router = APIRouter()

# The only files served, with their media types: nothing else under static/ is reachable.
ASSETS = {
    "app.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
}

# Same-origin scripts and styles only; media and API calls may go to the server's public base
# URL (VACE_PUBLIC_BASE_URL), which need not be the origin the page was opened on.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data: blob: http: https:; media-src 'self' blob: http: https:; "
    "connect-src 'self' http: https:; object-src 'none'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)
HEADERS = {
    "Cache-Control": "no-cache",
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def _read(name: str) -> bytes:
    return resources.files("vace_server.api").joinpath("static", name).read_bytes()


@router.get("/playground", include_in_schema=False)
def playground_page() -> Response:
    return Response(_read("index.html"), media_type="text/html; charset=utf-8", headers=HEADERS)


@router.get("/playground/static/{name}", include_in_schema=False)
def playground_asset(name: str) -> Response:
    media_type = ASSETS.get(name)
    if media_type is None:
        raise NotFound()
    return Response(_read(name), media_type=media_type, headers=HEADERS)
