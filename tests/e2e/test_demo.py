"""`make demo` end to end: a real server, the samples on loopback, the dashscope SDK."""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from vace_server.demo.run import run_demo

COMMITTED = Path(__file__).resolve().parents[2] / "samples"


def _base_url(lines: list[str]) -> str:
    found = re.search(r"on (http://127\.0\.0\.1:\d+)", lines[0])
    assert found, lines[0]
    return found.group(1)


def _stopped(base: str) -> bool:
    try:
        httpx.get(f"{base}/health", timeout=2)
    except httpx.ConnectError:
        return True
    return False


@pytest.mark.slow  # a server start and five tiny-model tasks: about 30 s on two cores
def test_the_demo_runs_all_five_functions(tmp_path: Path) -> None:
    lines: list[str] = []
    assert run_demo(COMMITTED, tmp_path, lines.append) == 0, "\n".join(lines)
    text = "\n".join(lines)
    assert text.count("status:  SUCCEEDED") == 5, text
    assert text.count("video:   http://127.0.0.1:") == 5
    assert text.count("task_id: ") == 5 and "video_count=1" in text
    assert "5/5 tasks succeeded" in text
    base = _base_url(lines)
    assert f"playground: {base}/playground" in text
    # the reference given as file:// went through the SDK's upload flow to this server
    uploads = list((tmp_path / "data" / "uploads").rglob("subject.png"))
    assert len(uploads) == 1 and uploads[0].read_bytes() == (COMMITTED / "subject.png").read_bytes()
    assert _stopped(base)


@pytest.mark.slow  # a server start and one task
def test_a_failed_task_fails_the_demo_and_a_sigterm_stops_its_server(tmp_path: Path) -> None:
    """`--stay` holds the server (its playground live) until a signal; a SIGTERM unwinds
    like Ctrl-C, so the server child is stopped, not orphaned; the failed task: exit 1."""
    samples = tmp_path / "samples"
    shutil.copytree(COMMITTED, samples)
    (samples / "clip.mp4").write_bytes(b"not a video at all")
    command = [sys.executable, "-m", "vace_server.demo", "--samples", str(samples)]
    proc = subprocess.Popen(
        [*command, "--only", "video_outpainting", "--stay"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        lines: list[str] = []
        for line in proc.stdout:  # until the demo holds the server
            lines.append(line.rstrip("\n"))
            if "Ctrl-C stops it" in line:
                break
        base = _base_url(lines)
        assert httpx.get(f"{base}/playground", timeout=10).status_code == 200
        proc.send_signal(signal.SIGTERM)
        lines += proc.stdout.read().splitlines()
        assert proc.wait(timeout=60) == 1, "\n".join(lines)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = "\n".join(lines)
    assert "video_outpainting" in text and "0/1 tasks succeeded" in text
    assert "InvalidFile" in text, text
    assert _stopped(base)
