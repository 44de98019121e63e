from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.images import png_bytes, scene, subject_on_white
from tests.support.live_server import API_KEY, LiveServer
from tests.support.media_server import MediaServer, Served


@pytest.fixture
def media() -> Iterator[MediaServer]:
    with MediaServer() as server:
        server.add("/subject.png", Served(png_bytes(subject_on_white()), "image/png"))
        server.add("/scene.png", Served(png_bytes(scene()), "image/png"))
        yield server


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[Callable[..., LiveServer]]:
    """Factory: `live_server(**env)` starts a server on tmp_path/data; all stopped at teardown."""
    started: list[LiveServer] = []

    def start(data_dir: Path | None = None, wait_ready: bool = True, **env: str) -> LiveServer:
        server = LiveServer(data_dir or tmp_path / "data", tmp_path / "server.log", **env)
        started.append(server)
        return server.start(wait_ready=wait_ready)

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def point_sdk(monkeypatch: pytest.MonkeyPatch) -> Callable[[LiveServer], None]:
    """`point_sdk(server)`: the dashscope SDK's module-global settings (base URL, API key)
    aimed at `server` for this test only. monkeypatch puts the previous values back at
    teardown, so no test leaks its (by then stopped) server into the next one's SDK calls."""
    import dashscope

    def point(server: LiveServer) -> None:
        monkeypatch.setattr(dashscope, "base_http_api_url", server.api)
        monkeypatch.setattr(dashscope, "api_key", API_KEY)

    return point
