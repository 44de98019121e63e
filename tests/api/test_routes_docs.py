"""vace_server/api/routes_docs.py: /docs and /redoc load nothing from outside this server."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from vace_server.api.app import create_app
from vace_server.settings import Settings

# Every URL an HTML page can load from: src/href attributes and the document URL in the script.
_URL = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']|url:\s*'([^']+)'|spec-url=["']([^"']+)""")
EXPECTED_TYPES = {".js": "text/javascript", ".css": "text/css", ".png": "image/png"}


def _loaded_urls(html: str) -> set[str]:
    return {next(g for g in match.groups() if g) for match in _URL.finditer(html)}


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_page_loads_only_local_assets(client: TestClient, page: str) -> None:
    response = client.get(page)
    assert response.status_code == 200
    policy = response.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "img-src 'self' data:;" in policy
    html = response.text
    assert "cdn" not in html.lower() and "fonts.googleapis" not in html
    urls = _loaded_urls(html)
    assert "/openapi.json" in urls
    assets = urls - {"/openapi.json"}
    assert assets, html
    for url in assets:
        assert url.startswith("/docs/static/"), url  # same origin, never a CDN
        served = client.get(url)
        assert served.status_code == 200, url
        suffix = url[url.rindex(".") :]
        assert served.headers["content-type"].startswith(EXPECTED_TYPES[suffix]), url
        assert len(served.content) > 1000, url  # the real bundle, not an empty file
    assert client.get("/openapi.json").status_code == 200


def test_the_bundles_are_swagger_ui_and_redoc(client: TestClient) -> None:
    swagger = client.get("/docs/static/swagger-ui-bundle.js").text
    assert "SwaggerUIBundle" in swagger
    assert "Redoc" in client.get("/docs/static/redoc.standalone.js").text
    assert ".swagger-ui" in client.get("/docs/static/swagger-ui.css").text


def test_the_bundles_are_the_versions_whose_licences_are_served(client: TestClient) -> None:
    # The licence texts in static/docs-licenses/ are those of swagger-ui-dist 5.32.6 and
    # redoc 2.5.3: a new fastapi-offline pin with other bundles must refresh them.
    assert '"5.32.6"' in client.get("/docs/static/swagger-ui-bundle.js").text
    assert '"2.5.3"' in client.get("/docs/static/redoc.standalone.js").text
    for bundle in ("swagger-ui-bundle.js", "redoc.standalone.js"):
        header = client.get(f"/docs/static/{bundle}").text.splitlines()[0]
        assert f"see {bundle}.LICENSE.txt" in header
        notices = client.get(f"/docs/static/{bundle}.LICENSE.txt")
        assert notices.status_code == 200 and notices.headers["content-type"].startswith(
            "text/plain"
        )
    assert "Apache License" in client.get("/docs/static/swagger-ui.LICENSE").text
    assert "SmartBear" in client.get("/docs/static/swagger-ui.NOTICE").text
    assert "MIT License" in client.get("/docs/static/redoc.LICENSE").text


@pytest.mark.parametrize("name", ["README.md", "index.html", "..%2Fcore.py", "LICENSE", "nope.js"])
def test_nothing_else_is_served(client: TestClient, name: str) -> None:
    response = client.get(f"/docs/static/{name}")
    assert response.status_code == 404
    assert response.json()["code"] == "NotFound"


def test_a_proxy_prefix_is_kept(settings: Settings) -> None:
    with TestClient(create_app(settings), root_path="/vace") as client:
        html = client.get("/docs").text
    assert "/vace/docs/static/swagger-ui-bundle.js" in html
    assert "/vace/openapi.json" in html
