"""All five functions end to end through the real dashscope SDK, with the official example
parameter sets, media from a loopback server and model-backed annotators (tiny random
checkpoints of the real architectures, built offline)."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import av
import dashscope
import httpx
import pytest
from dashscope import VideoSynthesis
from PIL import Image

from tests.support.fake_chat import FakeChat
from tests.support.images import png_bytes, scene, subject_on_white
from tests.support.live_server import API_KEY, LiveServer
from tests.support.media_server import MediaServer, Served
from tests.support.tiny_depth import save_tiny_depth
from tests.support.tiny_pose import write_tiny_pose_models
from tests.support.tiny_sam2 import save_tiny_sam2
from tests.support.videos import moving_square_frames, mp4_bytes, square_box

MODEL = "wanx2.1-vace-plus"


@pytest.fixture
def media() -> Iterator[MediaServer]:
    with MediaServer() as server:
        frames = moving_square_frames(n=17, size=(64, 64))
        server.add("/clip.mp4", Served(mp4_bytes(frames, 16), "video/mp4"))
        # the server generates 17 frames in all (VACE_NUM_FRAMES): a half-second first clip
        server.add("/short-clip.mp4", Served(mp4_bytes(frames[:8], 16), "video/mp4"))
        mask = Image.new("L", (64, 64), 0)
        mask.paste(255, square_box(0, size=(64, 64)))
        server.add("/mask.png", Served(png_bytes(mask), "image/png"))
        server.add("/subject.png", Served(png_bytes(subject_on_white()), "image/png"))
        server.add("/scene.png", Served(png_bytes(scene()), "image/png"))
        yield server


@pytest.fixture
def server(
    live_server: Callable[..., LiveServer],
    tmp_path: Path,
    point_sdk: Callable[[LiveServer], None],
) -> LiveServer:
    annotators = tmp_path / "annotators"
    save_tiny_depth(annotators / "depth")
    write_tiny_pose_models(annotators / "pose")
    save_tiny_sam2(annotators / "sam2")
    started = live_server(VACE_ANNOTATOR_DIR=str(annotators))
    point_sdk(started)  # the 1.x calls (`_sdk1`) read the SDK's module-global base URL
    return started


def _probe(url: str) -> tuple[int, int, int]:
    data = httpx.get(url, timeout=30).content
    with av.open(io.BytesIO(data), mode="r") as container:
        frames = list(container.decode(video=0))
        return len(frames), frames[0].width, frames[0].height


def _sdk1(server: LiveServer, prompt: str, extra_input: dict[str, Any], **params: Any) -> Any:
    result = VideoSynthesis.call(
        model=MODEL, prompt=prompt, extra_input=extra_input, api_key=API_KEY, **params
    )
    assert result.status_code == 200, result
    assert result.output.task_status == "SUCCEEDED", result
    return result.output


def _sdk2(server: LiveServer, **kwargs: Any) -> Any:
    client = dashscope.Client(api_key=API_KEY, base_url=server.api)
    job = client.videos.jobs.create(model=MODEL, **kwargs)
    done = client.videos.jobs.wait(job, poll_interval=0.2, max_interval=1.0)
    assert done.status == "SUCCEEDED", done
    return done


def test_health_lists_model_backed_annotators(server: LiveServer) -> None:
    annotators = server.health()["annotators"]
    assert annotators["depth"]["backend"] == "model"
    assert annotators["posebodyface"]["backend"] == "model"
    assert annotators["tracking"]["name"] == "sam2-video"
    assert annotators["scribble"]["backend"] == "classical"


@pytest.mark.slow  # five full runs with the tiny model and annotators: about a minute
def test_all_five_official_examples(server: LiveServer, media: MediaServer) -> None:
    # image_reference (docs/contract.md §5.1 example)
    out = _sdk1(
        server,
        "A girl walks slowly out of an ancient forest shrouded in morning mist.",
        {
            "function": "image_reference",
            "ref_images_url": [media.url("/subject.png"), media.url("/scene.png")],
        },
        obj_or_bg=["obj", "bg"],
        size="1280*720",
        prompt_extend=True,
    )
    assert _probe(out.video_url) == (30, 1280, 720)
    assert out.actual_prompt  # no rewriter configured: the prompt as given

    # video_repainting (§5.2 example): depth control, input resolution kept
    out = _sdk1(
        server,
        "A black steampunk-style car drives along the street.",
        {"function": "video_repainting", "video_url": media.url("/clip.mp4")},
        prompt_extend=False,
        control_condition="depth",
    )
    frames, width, height = _probe(out.video_url)
    assert (width, height) == (64, 64) and frames == 32  # 17 source frames at 16 fps

    # video_edit (§5.3 example): tracked mask, output exactly `size` (default 1280*720)
    out = _sdk1(
        server,
        "A lion in a suit elegantly sips coffee in a Parisian-style French cafe.",
        {
            "function": "video_edit",
            "video_url": media.url("/clip.mp4"),
            "mask_image_url": media.url("/mask.png"),
            "mask_frame_id": 1,
        },
        prompt_extend=False,
        mask_type="tracking",
        expand_ratio=0.05,
    )
    assert _probe(out.video_url)[1:] == (1280, 720)

    # video_extension (§5.4 example): first clip, the whole output counts
    done = _sdk2(
        server,
        prompt="A dog wearing sunglasses skateboards down the street, 3D cartoon.",
        function="video_extension",
        extra_input={"first_clip_url": media.url("/short-clip.mp4")},
        prompt_extend=False,
    )
    assert done.video_url and _probe(done.video_url)[1:] == (64, 64)

    # video_outpainting (§5.5 example): 1.5 on every side → a 1.5x canvas
    done = _sdk2(
        server,
        prompt="An elegant woman plays the violin passionately, a full symphony orchestra.",
        function="video_outpainting",
        extra_input={"video_url": media.url("/clip.mp4")},
        parameters={"top_scale": 1.5, "bottom_scale": 1.5, "left_scale": 1.5, "right_scale": 1.5},
        prompt_extend=False,
    )
    assert done.video_url and _probe(done.video_url)[1:] == (96, 96)


def test_pose_repainting_with_a_reference(server: LiveServer, media: MediaServer) -> None:
    out = _sdk1(
        server,
        "a robot dances",
        {
            "function": "video_repainting",
            "video_url": media.url("/clip.mp4"),
            "ref_images_url": [media.url("/subject.png")],
        },
        control_condition="posebodyface",
        strength=0.5,
        prompt_extend=False,
    )
    assert _probe(out.video_url)[1:] == (64, 64)


def test_prompt_extend_uses_the_configured_rewriter(
    live_server: Callable[..., LiveServer], media: MediaServer
) -> None:
    chat = FakeChat()
    try:
        server = live_server(VACE_PROMPT_REWRITE_URL=chat.url, VACE_PROMPT_REWRITE_MODEL="qwen")
        body: dict[str, Any] = {
            "model": MODEL,
            "input": {
                "function": "video_outpainting",
                "prompt": "a red ball",
                "video_url": media.url("/clip.mp4"),
            },
            "parameters": {"prompt_extend": True},
        }
        out = server.wait(server.submit(body))["output"]
        assert out["orig_prompt"] == "a red ball"
        assert out["actual_prompt"] == "A red ball rolls across a sunny wooden table."
        body["parameters"]["prompt_extend"] = False
        out = server.wait(server.submit(body))["output"]
        assert "actual_prompt" not in out and out["task_status"] == "SUCCEEDED"
        chat.mode = "error"  # a failing rewriter never fails the task
        body["parameters"]["prompt_extend"] = True
        out = server.wait(server.submit(body))["output"]
        assert out["task_status"] == "SUCCEEDED" and out["actual_prompt"] == "a red ball"
    finally:
        chat.httpd.shutdown()
        chat.httpd.server_close()
