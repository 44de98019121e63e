"""`vace-server` entry points: the one-line refusals a newcomer meets first (docs/contract.md
is not involved: these are the operator's messages)."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from vace_server.cli import app


def test_a_port_in_use_stops_serve_with_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VACE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("VACE_MODEL", "tiny")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(app, ["serve", "--port", str(port)])
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        f"vace-server: port {port} on 127.0.0.1 is already in use (another vace-server?): stop "
        "that process or choose another port with --port / VACE_PORT"
    ]
    assert not (tmp_path / "data").exists()  # refused before the database or a worker started


def test_an_unknown_bare_model_name_is_a_missing_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VACE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["serve", "--model", "vace-1.3b"])
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        "vace-server: invalid settings: VACE_MODEL='vace-1.3b': the model folder does not exist "
        f"(looked in {tmp_path}); give a diffusers folder, a Hugging Face repo id (owner/name), "
        "'auto', 'tiny' or 'tiny-a14b'"
    ]


@pytest.mark.parametrize(
    ("variable", "value", "module", "line"),
    [
        (
            "VACE_DATABASE_URL",
            "postgresql://vace@db.invalid/vace",
            "psycopg",
            "a PostgreSQL VACE_DATABASE_URL needs psycopg, which is not installed: "
            "pip install 'vace-server[postgres]'",
        ),
        (
            "VACE_STORAGE_URL",
            "s3://bucket/outputs",
            "boto3",
            "an s3:// VACE_STORAGE_URL needs boto3, which is not installed: "
            "pip install 'vace-server[s3]'",
        ),
    ],
)
def test_a_deployment_piece_without_its_extra_is_one_line_naming_the_extra(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    variable: str,
    value: str,
    module: str,
    line: str,
) -> None:
    monkeypatch.setenv("VACE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("VACE_MODEL", "tiny")
    monkeypatch.setenv(variable, value)
    # None in sys.modules makes `import module` raise ImportError, as on an install without it
    monkeypatch.setitem(sys.modules, module, None)
    result = CliRunner().invoke(app, ["serve"])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("vace-server: invalid settings: ")
    assert lines[0].endswith(line)
    assert not (tmp_path / "data").exists()


def test_serve_with_worker_children_refuses_a_group_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VACE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("VACE_MODEL", "tiny")
    monkeypatch.setenv("VACE_GPUS_PER_TASK", "2")
    result = CliRunner().invoke(app, ["serve"])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("vace-server: invalid settings: VACE_GPUS_PER_TASK=2: ")
    assert "vace-server worker --gpus-per-task N" in lines[0]
    assert not (tmp_path / "data").exists()
