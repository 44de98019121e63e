"""Local files through the temporary upload flow, with the real dashscope SDK (2.0.2) against
a live server: the SDK fetches a policy, posts the file to our receiver and sends oss:// URLs."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import dashscope
import httpx
import pytest
from dashscope import VideoSynthesis
from dashscope.utils.oss_utils import OssUtils

from tests.support.images import png_bytes, scene, subject_on_white
from tests.support.live_server import API_KEY, LiveServer

MODEL = "wanx2.1-vace-plus"
OTHER_KEY = "sk-e2e-other-account"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    root = tmp_path_factory.mktemp("uploads-e2e")
    live = LiveServer(
        root / "data", root / "server.log", VACE_API_KEYS=f"{API_KEY}=e2e,{OTHER_KEY}=other"
    )
    live.start()
    yield live
    live.stop()


def _uploaded_files(server: LiveServer) -> list[Path]:
    return [
        p for p in (server.data_dir / "uploads" / "dashscope-instant").rglob("*") if p.is_file()
    ]


def test_2x_jobs_create_uploads_file_uris_in_extra_input(
    server: LiveServer, tmp_path: Path
) -> None:
    subject = tmp_path / "subject.png"
    subject.write_bytes(png_bytes(subject_on_white()))
    client = dashscope.Client(api_key=API_KEY, base_url=server.api)
    job = client.videos.jobs.create(
        model=MODEL,
        prompt="a red ball",
        function="image_reference",
        extra_input={"ref_images_url": [f"file://{subject}"]},
        size="960*960",
        seed=3,
    )
    done = client.videos.jobs.wait(job, poll_interval=0.2, max_interval=1.0)
    assert done.status == "SUCCEEDED", done
    assert done.video_url
    assert subject.name in [p.name for p in _uploaded_files(server)]


def test_1x_named_url_argument_is_uploaded(
    server: LiveServer, tmp_path: Path, point_sdk: Callable[[LiveServer], None]
) -> None:
    frame = tmp_path / "frame.png"
    frame.write_bytes(png_bytes(scene(640, 400)))
    point_sdk(server)
    task = VideoSynthesis.async_call(
        model=MODEL,
        prompt="the meadow in the wind",
        first_frame_url=f"file://{frame}",
        extra_input={"function": "video_extension"},
        prompt_extend=False,
        api_key=API_KEY,
    )
    assert task.status_code == 200, task
    result = VideoSynthesis.wait(task, api_key=API_KEY)
    assert result.output.task_status == "SUCCEEDED", result
    assert result.output.video_url
    assert frame.name in [p.name for p in _uploaded_files(server)]


def test_an_upload_of_one_account_fails_for_another(
    server: LiveServer, tmp_path: Path, point_sdk: Callable[[LiveServer], None]
) -> None:
    frame = tmp_path / "mine.png"
    frame.write_bytes(png_bytes(subject_on_white()))
    point_sdk(server)
    url, _cert = OssUtils.upload(model=MODEL, file_path=str(frame), api_key=API_KEY)
    assert url.startswith("oss://dashscope-instant/") and url.endswith("/mine.png")
    body = {
        "model": MODEL,
        "input": {"function": "image_reference", "prompt": "x", "ref_images_url": [url]},
    }

    def submit(key: str) -> str:
        r = httpx.post(
            f"{server.api}/services/aigc/video-generation/video-synthesis",
            json=body,
            headers={
                "Authorization": f"Bearer {key}",
                "X-DashScope-Async": "enable",
                "X-DashScope-OssResourceResolve": "enable",
            },
            timeout=30,
        )
        assert r.status_code == 200, r.text
        task_id: str = r.json()["output"]["task_id"]
        return task_id

    def wait(key: str, task_id: str) -> dict[str, object]:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            r = httpx.get(
                f"{server.api}/tasks/{task_id}", headers={"Authorization": f"Bearer {key}"}
            )
            output: dict[str, object] = r.json()["output"]
            if output["task_status"] in ("SUCCEEDED", "FAILED", "CANCELED", "UNKNOWN"):
                return output
            time.sleep(0.2)
        raise AssertionError(f"task {task_id} not finished; log:\n{server.log_text()}")

    failed = wait(OTHER_KEY, submit(OTHER_KEY))
    assert failed["task_status"] == "FAILED"
    assert failed["code"] == "InvalidURL"
    message = str(failed["message"])
    assert message.startswith("Invalid URL provided in your request. input.")
    assert "no such upload for this API key and model" in message
    assert wait(API_KEY, submit(API_KEY))["task_status"] == "SUCCEEDED"
