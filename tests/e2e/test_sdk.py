"""The real dashscope SDK (2.0.2) against a live server with the tiny model."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import av
import dashscope
import httpx
from dashscope import VideoSynthesis

from tests.support.live_server import API_KEY, LiveServer
from tests.support.media_server import MediaServer

MODEL = "wanx2.1-vace-plus"


def _download_and_probe(url: str, tmp_path: Path) -> tuple[int, int, int, str, int]:
    response = httpx.get(url, timeout=30)  # no Authorization: signed URL
    assert response.status_code == 200
    assert response.headers["content-type"] == "video/mp4"
    path = tmp_path / "out.mp4"
    path.write_bytes(response.content)
    with av.open(str(path)) as container:
        assert not container.streams.audio
        stream = container.streams.video[0]
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
        return (
            len(frames),
            frames[0].shape[1],
            frames[0].shape[0],
            stream.codec_context.name,
            len(container.streams.audio),
        )


def test_sdk_1x_video_synthesis_with_extra_input(
    live_server: Callable[..., LiveServer],
    media: MediaServer,
    tmp_path: Path,
    point_sdk: Callable[[LiveServer], None],
) -> None:
    server = live_server()
    point_sdk(server)
    task = VideoSynthesis.async_call(
        model=MODEL,
        prompt="a red ball on a white table",
        extra_input={
            "function": "image_reference",
            "ref_images_url": [media.url("/subject.png"), media.url("/scene.png")],
        },
        obj_or_bg=["obj", "bg"],
        size="1280*720",
        seed=42,
        watermark=True,
        api_key=API_KEY,
    )
    assert task.status_code == 200, task
    assert task.output.task_status == "PENDING"
    result = VideoSynthesis.wait(task, api_key=API_KEY)
    assert result.status_code == 200
    assert result.output.task_status == "SUCCEEDED", result
    assert result.usage.video_count == 1
    # this server's extension rides along in the SDK's usage (docs/contract.md §7.2)
    assert (result.usage["preset"], result.usage["steps"]) == ("quality", 2)
    assert result.usage["seed"] == 42  # the seed that produced it
    assert result.output.orig_prompt == "a red ball on a white table"
    frames, width, height, codec, audio = _download_and_probe(result.output.video_url, tmp_path)
    # 17 frames at 16 fps = 1 s of video, delivered at 30 fps and exactly `size`.
    assert (frames, width, height, codec, audio) == (30, 1280, 720, "h264", 0)


def test_sdk_2x_jobs_create_and_wait(
    live_server: Callable[..., LiveServer], media: MediaServer, tmp_path: Path
) -> None:
    server = live_server()
    client = dashscope.Client(api_key=API_KEY, base_url=server.api)
    job = client.videos.jobs.create(
        model=MODEL,
        prompt="a dog",
        function="image_reference",
        extra_input={"ref_images_url": [media.url("/subject.png")]},
        size="960*960",
        seed=1,
        prompt_extend=False,
    )
    assert job.status == "PENDING"
    done = client.videos.jobs.wait(job, poll_interval=0.2, max_interval=1.0)
    assert done.status == "SUCCEEDED"
    assert done.usage is not None
    assert "actual_prompt" not in (done.output or {})
    assert done.video_url
    frames, width, height, codec, _ = _download_and_probe(done.video_url, tmp_path)
    assert (frames, width, height, codec) == (30, 960, 960, "h264")
    listed = client.videos.jobs.list(page_no=1, page_size=10)
    assert listed.total >= 1
    assert [j.task_id for j in listed.tasks] == [job.task_id]
    assert listed.tasks[0].status == "SUCCEEDED"


def test_media_failure_ends_failed_and_server_keeps_serving(
    live_server: Callable[..., LiveServer], media: MediaServer
) -> None:
    server = live_server()
    body: dict[str, Any] = {
        "model": MODEL,
        "input": {
            "function": "image_reference",
            "prompt": "x",
            "ref_images_url": [media.url("/missing.png")],
        },
    }
    failed = server.wait(server.submit(body))
    assert failed["output"]["task_status"] == "FAILED"
    assert failed["output"]["code"] == "InvalidURL"
    assert failed["output"]["message"] == (
        "Invalid URL provided in your request. input.ref_images_url "
        f"({media.url('/missing.png')}): the server answered HTTP 404."
    )
    assert "usage" not in failed
    body["input"]["ref_images_url"] = [media.url("/subject.png")]
    assert server.wait(server.submit(body))["output"]["task_status"] == "SUCCEEDED"
