from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from vace_server.api.app import create_app
from vace_server.api.context import AppContext
from vace_server.settings import Settings

KEY_A = "sk-account-a"
KEY_A2 = "sk-account-a-second"
KEY_B = "sk-account-b"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        api_keys=f"{KEY_A}=team-a,{KEY_A2}=team-a,{KEY_B}=team-b",
        workers=0,
        public_base_url="http://testserver",
    )


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        yield c


@pytest.fixture
def context(client: TestClient) -> AppContext:
    ctx: AppContext = client.app.state.ctx  # type: ignore[attr-defined]
    return ctx


def auth(key: str = KEY_A, *, async_header: bool = True) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {key}"}
    if async_header:
        headers["X-DashScope-Async"] = "enable"
    return headers
