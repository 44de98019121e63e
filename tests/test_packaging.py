"""The wheel and sdist: built from the tracked files, installed into a fresh venv without the
dev extras, and `vace-server serve` answering /health from that install."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import httpx
import pytest

from tests.support.live_server import free_port

ROOT = Path(__file__).resolve().parent.parent
# Files the server loads through importlib.resources / Path(__file__) at run time.
PACKAGE_DATA = (
    "vace_server/py.typed",
    "vace_server/tasks/migrations/env.py",
    "vace_server/tasks/migrations/script.py.mako",
    "vace_server/api/static/index.html",
    "vace_server/api/static/style.css",
    "vace_server/api/static/js/main.js",
    "vace_server/api/static/js/package.json",
    "vace_server/media/fonts/wqy-microhei-mark.ttf",
    "vace_server/media/fonts/LICENSE-Apache-2.0.txt",
    "vace_server/media/fonts/NOTICE.txt",
    "vace_server/api/static/docs-licenses/swagger-ui.LICENSE",
)


def _outside_env() -> dict[str, str]:
    """This environment without what points Python at the source tree: with PYTHONPATH on the
    checkout, pip in the new venv would see its `*.egg-info` and skip installing the wheel."""
    hidden = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")
    return {key: value for key, value in os.environ.items() if key not in hidden}


def _tracked_copy(dest: Path) -> Path:
    """The tracked files only, so the build sees what a clone sees (and writes nothing here)."""
    names = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, check=True, capture_output=True
    ).stdout.split(b"\0")
    for name in filter(None, names):
        source = ROOT / os.fsdecode(name)
        if source.is_file():
            (dest / os.fsdecode(name)).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / os.fsdecode(name))
    return dest


def _build(tmp_path: Path) -> tuple[Path, Path]:
    """sdist, then the wheel built FROM the sdist (`python -m build`'s default), so a file
    missing from the sdist fails here too. No isolation: the build tools are the dev venv's."""
    src = _tracked_copy(tmp_path / "src")
    out = tmp_path / "dist"
    built = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(src)],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
        env=_outside_env(),
    )
    # setuptools' license-metadata (and any other) deprecation warnings are gone
    assert "DeprecationWarning" not in built.stdout + built.stderr
    (wheel,) = out.glob("vace_server-*.whl")
    (sdist,) = out.glob("vace_server-*.tar.gz")
    return wheel, sdist


def _wait_for_health(url: str, proc: subprocess.Popen[bytes], log: Path) -> httpx.Response:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"vace-server exited {proc.returncode}:\n{log.read_text()}")
        try:
            return httpx.get(url, timeout=2)
        except httpx.TransportError:
            time.sleep(0.3)
    pytest.fail(f"no /health answer within 60 s:\n{log.read_text()}")


@pytest.mark.slow
def test_the_wheel_installs_into_a_clean_venv_and_serves(tmp_path: Path) -> None:
    wheel, _sdist = _build(tmp_path)
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    assert not [name for name in PACKAGE_DATA if name not in names]
    assert any(n.startswith("vace_server/tasks/migrations/versions/0001") for n in names)

    venv = tmp_path / "venv"
    clean = _outside_env()
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=60, env=clean)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q"]
    # torch first, pinned as the Makefile does (never a bare torch); then the wheel alone,
    # without extras: the default server must run on what `dependencies` pulls in.
    subprocess.run([*pip, "torch==2.13.0"], check=True, capture_output=True, timeout=300, env=clean)
    installed = subprocess.run(
        [*pip, str(wheel)], check=True, capture_output=True, text=True, timeout=300, env=clean
    )
    assert "Deprecat" not in installed.stderr
    freeze = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "freeze"],
        check=True,
        capture_output=True,
        text=True,
        env=clean,
    ).stdout.lower()
    for extra_only in ("psycopg", "boto3", "ray", "pytest", "playwright", "moto"):
        assert f"\n{extra_only}==" not in f"\n{freeze}"

    port, log = free_port(), tmp_path / "serve.log"
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "VACE_PORT": str(port),
        "VACE_DATA_DIR": str(tmp_path / "data"),
        "VACE_WORKERS": "0",
        "VACE_MODEL": "tiny",
    }
    with log.open("wb") as sink:
        # cwd outside the source tree, so the installed package is the one imported
        proc = subprocess.Popen(
            [str(venv / "bin" / "vace-server"), "serve"],
            cwd=tmp_path,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
        try:
            response = _wait_for_health(f"http://127.0.0.1:{port}/health", proc, log)
            assert response.status_code == 200, response.text
            page = httpx.get(f"http://127.0.0.1:{port}/playground", timeout=5)
            assert page.status_code == 200 and "<html" in page.text.lower()
            assert (tmp_path / "data").is_dir()  # the migrations ran from the installed files
        finally:
            proc.terminate()
            proc.wait(timeout=30)
