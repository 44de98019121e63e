"""The demo's pieces that need no server: the sample server and the five requests."""

from __future__ import annotations

from pathlib import Path

import httpx

from vace_server.demo.run import demo_tasks, serve_samples
from vace_server.demo.samples import SAMPLES

COMMITTED = Path(__file__).resolve().parents[2] / "samples"
FUNCTIONS = {
    "image_reference", "video_repainting", "video_edit", "video_extension", "video_outpainting",
}  # fmt: skip


def test_the_samples_are_served_on_loopback() -> None:
    with serve_samples(COMMITTED) as base:
        assert base.startswith("http://127.0.0.1:")
        video = httpx.get(f"{base}/clip.mp4", timeout=10)
        assert video.status_code == 200
        assert video.headers["content-type"] == "video/mp4"
        assert video.content == (COMMITTED / "clip.mp4").read_bytes()
        assert httpx.get(f"{base}/subject.png", timeout=10).headers["content-type"] == "image/png"
        assert httpx.get(f"{base}/../pyproject.toml", timeout=10).status_code == 404
    try:
        httpx.get(f"{base}/clip.mp4", timeout=2)
    except httpx.ConnectError:
        pass  # stopped with the block
    else:
        raise AssertionError("the sample server still answers")


def _urls(value: object) -> list[str]:
    if isinstance(value, str):
        return [value] if "://" in value else []
    if isinstance(value, list):
        return [u for item in value for u in _urls(item)]
    if isinstance(value, dict):
        return [u for item in value.values() for u in _urls(item)]
    return []


def test_the_five_functions_on_the_samples_one_by_local_file() -> None:
    tasks = demo_tasks("http://127.0.0.1:9", COMMITTED)
    assert {t.function for t in tasks} == FUNCTIONS and len(tasks) == 5
    urls = [u for t in tasks for u in _urls(t.kwargs)]
    local = [u for u in urls if u.startswith("file://")]
    assert local == [(COMMITTED / "subject.png").resolve().as_uri()]
    served = {u.removeprefix("http://127.0.0.1:9/") for u in urls if u not in local}
    assert served <= set(SAMPLES), served
