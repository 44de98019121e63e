from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from vace_server.demo.serve_process import ServeProcess, free_port


def test_a_free_port_can_be_bound() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", free_port()))


def test_a_server_that_exits_at_start_is_reported_with_its_log(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "VACE_DATA_DIR": str(tmp_path / "data"),
        "VACE_MODEL": str(tmp_path / "none"),
    }
    server = ServeProcess(env, tmp_path / "serve.log")
    assert server.env["VACE_PORT"] == str(server.port)
    with pytest.raises(RuntimeError, match="exited early") as failure:
        server.start(timeout=120)
    assert "does not exist" in str(failure.value)  # the server's own line, from its log
    server.stop()  # already gone: nothing to do
