"""/docs (Swagger UI) and /redoc (ReDoc) in headless Debian Chromium with every request to
another origin refused: the pages must render the document from this server alone."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.api.conftest import KEY_A
from tests.e2e.test_playground import CHROMIUM_ARGS, _chromium
from tests.support.thread_server import ThreadServer
from vace_server.api.app import create_app
from vace_server.api.openapi_routes import ROUTES
from vace_server.settings import Settings

pw = pytest.importorskip(
    "playwright.sync_api", reason="playwright is not installed (pip install -e '.[dev]')"
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadServer]:
    root: Path = tmp_path_factory.mktemp("docs-pages")
    settings = Settings(data_dir=root / "data", api_keys=KEY_A, workers=0)
    with ThreadServer(create_app(settings)) as live:
        yield live


@pytest.fixture
def offline_page(server: ThreadServer) -> Iterator[tuple[Any, list[str]]]:
    executable = _chromium()
    if executable is None:
        pytest.skip("Chromium not found at /usr/bin/chromium: run scripts/ensure-chromium.sh")
    refused: list[str] = []
    errors: list[str] = []

    def only_local(route: Any) -> None:
        url = route.request.url
        if url.startswith(server.base_url + "/") or url.startswith("data:"):
            route.continue_()
        else:
            refused.append(url)
            route.abort()

    with pw.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable, headless=True, args=CHROMIUM_ARGS
        )
        context = browser.new_context()
        context.route("**/*", only_local)
        page = context.new_page()
        page.set_default_timeout(20_000)
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        yield page, refused
        context.close()
        browser.close()
    assert not errors, f"uncaught errors in the page: {errors}"


def test_swagger_ui_renders_every_operation_offline(
    server: ThreadServer, offline_page: tuple[Any, list[str]]
) -> None:
    page, refused = offline_page
    page.goto(f"{server.base_url}/docs")
    operations = page.locator(".opblock")
    pw.expect(operations).to_have_count(len(ROUTES))
    pw.expect(page.locator(".btn.authorize")).to_be_visible()  # the ApiKey scheme
    assert not refused, refused


def test_redoc_renders_the_create_body_offline(
    server: ThreadServer, offline_page: tuple[Any, list[str]]
) -> None:
    page, refused = offline_page
    page.goto(f"{server.base_url}/redoc")
    heading = page.get_by_role("heading", name="Create a task (asynchronous only)")
    pw.expect(heading).to_be_visible()
    pw.expect(page.get_by_text("video_outpainting").first).to_be_attached()
    assert not refused, refused
