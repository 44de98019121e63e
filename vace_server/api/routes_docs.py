"""`/docs` (Swagger UI) and `/redoc` (ReDoc) over `/openapi.json`, with their scripts, styles
and icon served from this server, so both pages work without internet access.

The files are the bundles shipped in the `fastapi-offline` package (pinned in pyproject.toml;
only its static files are used): swagger-ui-dist 5.32.6 and redoc 2.5.3, whose licence texts
that package lacks, so they are served beside them from `static/docs-licenses/` (its README).
FastAPI's page builders are pointed at the local routes below instead of their CDN defaults,
and ReDoc's Google Fonts are off.
"""

from __future__ import annotations

from importlib import resources

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, Response

from vace_server.errors import NotFound

router = APIRouter()

DOCS_ROUTE = "/docs"
REDOC_ROUTE = "/redoc"
ASSET_ROUTE = "/docs/static"
ASSET_PACKAGE = "fastapi_offline"
# The only files served, with their media types.
ASSETS = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "redoc.standalone.js": "text/javascript; charset=utf-8",
    "favicon.png": "image/png",
}
# Served from this package; each bundle's header points at `<bundle>.LICENSE.txt` beside it.
LICENSES = (
    "swagger-ui.LICENSE",
    "swagger-ui.NOTICE",
    "swagger-ui-bundle.js.LICENSE.txt",
    "redoc.LICENSE",
    "redoc.standalone.js.LICENSE.txt",
)
TEXT_TYPE = "text/plain; charset=utf-8"
# The bundles change only with the pinned package: let browsers keep them for a day.
ASSET_HEADERS = {"Cache-Control": "public, max-age=86400", "X-Content-Type-Options": "nosniff"}
# Nothing from another origin, ever: ReDoc's bundle would otherwise fetch its footer logo from
# Redocly's CDN. Inline script and styles: FastAPI's Swagger page starts the UI inline and both
# UIs inject their styles; ReDoc's search runs in a blob: worker.
PAGE_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; worker-src 'self' blob:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)
PAGE_HEADERS = {"Content-Security-Policy": PAGE_CSP, "Cache-Control": "no-cache"}


def asset_bytes(name: str) -> bytes:
    if name in LICENSES:
        licences = resources.files("vace_server.api").joinpath("static", "docs-licenses")
        return licences.joinpath(name).read_bytes()
    return resources.files(ASSET_PACKAGE).joinpath("static", name).read_bytes()


def _asset_url(request: Request, name: str) -> str:
    # root_path: the prefix a reverse proxy mounts the app under, so the links stay valid there
    return f"{request.scope.get('root_path', '')}{ASSET_ROUTE}/{name}"


def _openapi_url(request: Request) -> str:
    return f"{request.scope.get('root_path', '')}{request.app.openapi_url}"


@router.get(DOCS_ROUTE, include_in_schema=False)
def swagger_ui(request: Request) -> HTMLResponse:
    page = get_swagger_ui_html(
        openapi_url=_openapi_url(request),
        title=f"{request.app.title} - Swagger UI",
        swagger_js_url=_asset_url(request, "swagger-ui-bundle.js"),
        swagger_css_url=_asset_url(request, "swagger-ui.css"),
        swagger_favicon_url=_asset_url(request, "favicon.png"),
        # no badge from validator.swagger.io (it would send the document's URL off-site)
        swagger_ui_parameters={"validatorUrl": None},
    )
    page.headers.update(PAGE_HEADERS)
    return page


@router.get(REDOC_ROUTE, include_in_schema=False)
def redoc(request: Request) -> HTMLResponse:
    page = get_redoc_html(
        openapi_url=_openapi_url(request),
        title=f"{request.app.title} - ReDoc",
        redoc_js_url=_asset_url(request, "redoc.standalone.js"),
        redoc_favicon_url=_asset_url(request, "favicon.png"),
        with_google_fonts=False,
    )
    page.headers.update(PAGE_HEADERS)
    return page


@router.get(ASSET_ROUTE + "/{name}", include_in_schema=False)
def docs_asset(name: str) -> Response:
    media_type = TEXT_TYPE if name in LICENSES else ASSETS.get(name)
    if media_type is None:  # checked before any file is opened: nothing else is reachable
        raise NotFound()
    return Response(asset_bytes(name), media_type=media_type, headers=ASSET_HEADERS)
