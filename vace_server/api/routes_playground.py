"""The browser playground: one static page (HTML + native ES modules + CSS), no build step.

The files are package data under `vace_server/api/static/` (the modules in `static/js/`); the
page builds its form from `/playground/schema.json` (see `playground_schema.py`) and talks to
the public API with the key the user types in, exactly like any other client. Neither the page
nor its schema needs a key: both are the same for everyone.
"""

from __future__ import annotations

import io
import re
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response

from vace_server.api.context import ctx
from vace_server.api.playground_schema import annotator_availability, schema_json
from vace_server.errors import NotFound
from vace_server.media.watermark import render_mark

router = APIRouter()

# The only files served, with their media types: nothing else under static/ is reachable.
ASSETS = {
    "style.css": "text/css; charset=utf-8",
}
JS_TYPE = "text/javascript; charset=utf-8"
# Module names in static/js/ (checked before any file is opened: no dots, no slashes).
_MODULE_NAME = re.compile(r"[a-z][a-z_]*\.js")

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


def _static(*parts: str) -> Traversable:
    return resources.files("vace_server.api").joinpath("static", *parts)


def _read(name: str) -> bytes:
    return _static(name).read_bytes()


@router.get("/playground", include_in_schema=False)
def playground_page() -> Response:
    return Response(_read("index.html"), media_type="text/html; charset=utf-8", headers=HEADERS)


@router.get("/playground/static/{name}", include_in_schema=False)
def playground_asset(name: str) -> Response:
    media_type = ASSETS.get(name)
    if media_type is None:
        raise NotFound()
    return Response(_read(name), media_type=media_type, headers=HEADERS)


@router.get("/playground/static/js/{name}", include_in_schema=False)
def playground_module(name: str) -> Response:
    if _MODULE_NAME.fullmatch(name) is None or not _static("js", name).is_file():
        raise NotFound()
    return Response(_static("js", name).read_bytes(), media_type=JS_TYPE, headers=HEADERS)


@router.get("/playground/schema.json", include_in_schema=False)
def playground_schema() -> Response:
    """Functions, their fields, choices, defaults, limits and progress stages (the form's
    source of truth, built from the validator's tables)."""
    return Response(schema_json(), media_type="application/json", headers=HEADERS)


@router.get("/playground/annotators.json", include_in_schema=False)
async def playground_annotators(request: Request) -> JSONResponse:
    """Which controls the live workers (any machine, from the registry) cannot annotate: the
    form marks them. Control names and counts only, no paths. A database fault answers 503
    through the usual mapping, and the page then marks nothing."""
    c = ctx(request)

    def live() -> list[dict[str, Any]]:
        return c.workers.alive(c.settings.worker_alive_ms, tidy=False)

    return JSONResponse(annotator_availability(await run_in_threadpool(live)), headers=HEADERS)


# The preview's frame height: the mark comes out as on a 720p video (about 32 px tall).
PREVIEW_FRAME_HEIGHT = 720


@router.get("/playground/watermark.png", include_in_schema=False)
def playground_watermark(request: Request) -> Response:
    """The mark `watermark: true` draws, rendered by the very code (and font setting) the
    worker uses, as a transparent PNG: the page shows it instead of text the browser may lack
    a CJK font for."""
    import numpy as np
    from PIL import Image

    rgb, alpha = render_mark(PREVIEW_FRAME_HEIGHT, ctx(request).settings.media.watermark_font)
    rgba = np.dstack([rgb, np.rint(alpha * 255).astype(np.uint8)])
    out = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(out, format="PNG")
    return Response(out.getvalue(), media_type="image/png", headers=HEADERS)
