"""Every media failure mode ends the task FAILED with the contract's code; the server goes on."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
from PIL import Image

from tests.hostile.media_corpus import audio_only_mp4, png_bomb, zero_frame_mp4
from tests.support.images import png_bytes, subject_on_white
from tests.support.live_server import LiveServer
from tests.support.media_server import MediaServer, Served
from tests.support.videos import moving_square_frames, mp4_bytes

MODEL = "wanx2.1-vace-plus"


@pytest.fixture
def failing_media() -> Iterator[MediaServer]:
    with MediaServer() as server:
        clip = moving_square_frames(n=17, size=(64, 64))
        server.add("/clip.mp4", Served(mp4_bytes(clip, 16), "video/mp4"))
        server.add("/slow-fps.mp4", Served(mp4_bytes(clip[:10], 10), "video/mp4"))
        two_seconds = moving_square_frames(n=32, size=(32, 32))
        server.add("/two-seconds.mp4", Served(mp4_bytes(two_seconds, 16), "video/mp4"))
        server.add(
            "/corrupt.mp4", Served(b"\x00\x00\x00\x18ftypisom" + b"\x17" * 4000, "video/mp4")
        )
        server.add("/picture.png", Served(png_bytes(subject_on_white()), "image/png"))
        server.add("/text.png", Served(b"hello, not an image at all", "image/png"))
        huge = np.random.default_rng(0).integers(0, 255, (1900, 1900, 3), dtype=np.uint8)
        server.add("/huge.png", Served(png_bytes(Image.fromarray(huge)), "image/png"))
        server.add("/mask-wrong-size.png", Served(png_bytes(Image.new("L", (48, 48), 255))))
        server.add("/one-frame.mp4", Served(mp4_bytes(clip[:1], 16), "video/mp4"))
        server.add("/audio-only.mp4", Served(audio_only_mp4(), "video/mp4"))
        server.add("/zero-frames.mp4", Served(zero_frame_mp4(), "video/mp4"))
        server.add("/mask-13000.png", Served(png_bomb(13000, 8), "image/png"))
        yield server


def _edit(video: str, mask: str) -> dict[str, Any]:
    return {"function": "video_edit", "prompt": "p", "video_url": video, "mask_image_url": mask}


CASES = [
    (
        "unreachable",
        lambda m: {
            "function": "image_reference",
            "prompt": "p",
            "ref_images_url": ["http://127.0.0.1:9/x.png"],
        },
        "InvalidURL.ConnectionRefused",
        "Connection to http://127.0.0.1:9/x.png refused, please provide available URL. "
        "input.ref_images_url: nothing accepts connections at that host and port.",
    ),
    (
        "not found",
        lambda m: {
            "function": "image_reference",
            "prompt": "p",
            "ref_images_url": [m.url("/nothing.png")],
        },
        "InvalidURL",
        None,  # names the field, the URL and the status: checked after the loop
    ),
    (
        "wrong type",
        lambda m: {
            "function": "video_outpainting",
            "prompt": "p",
            "video_url": m.url("/picture.png"),
        },
        "InvalidFile.Format",
        None,
    ),
    (
        "not an image",
        lambda m: {
            "function": "image_reference",
            "prompt": "p",
            "ref_images_url": [m.url("/text.png")],
        },
        "InvalidFile.Format",
        None,
    ),
    (
        "corrupt video",
        lambda m: {
            "function": "video_outpainting",
            "prompt": "p",
            "video_url": m.url("/corrupt.mp4"),
        },
        "InvalidFile.Openerror",
        "Invalid file, cannot open file as video/audio/image.",
    ),
    (
        "clips too long",
        lambda m: {
            "function": "video_extension",
            "prompt": "p",
            "first_clip_url": m.url("/two-seconds.mp4"),
            "last_clip_url": m.url("/two-seconds.mp4"),
        },
        "InvalidFile.Duration",
        None,
    ),
    (
        "too large",
        lambda m: {
            "function": "image_reference",
            "prompt": "p",
            "ref_images_url": [m.url("/huge.png")],
        },
        "InvalidFile.Size",
        None,
    ),
    (
        "low fps",
        lambda m: {
            "function": "video_outpainting",
            "prompt": "p",
            "video_url": m.url("/slow-fps.mp4"),
        },
        "InvalidFile.FPS",
        None,
    ),
    (
        "one-frame video",
        lambda m: {
            "function": "video_outpainting",
            "prompt": "p",
            "video_url": m.url("/one-frame.mp4"),
        },
        "InvalidFile.Duration",
        None,
    ),
    (
        "audio-only video",
        lambda m: {
            "function": "video_outpainting",
            "prompt": "p",
            "video_url": m.url("/audio-only.mp4"),
        },
        "InvalidFile.Format",
        None,
    ),
    (
        "zero-frame video",
        lambda m: {
            "function": "video_outpainting",
            "prompt": "p",
            "video_url": m.url("/zero-frames.mp4"),
        },
        "InvalidFile.Duration",
        None,
    ),
    (
        "13000x13000 mask",
        lambda m: _edit(m.url("/clip.mp4"), m.url("/mask-13000.png")),
        "InvalidFile.Resolution",
        None,
    ),
    (
        "mask size mismatch",
        lambda m: _edit(m.url("/clip.mp4"), m.url("/mask-wrong-size.png")),
        "InvalidParameter",
        None,
    ),
]


def test_each_media_failure_ends_failed_with_its_code(
    live_server: Callable[..., LiveServer], failing_media: MediaServer
) -> None:
    server = live_server()
    submitted = []
    for name, make_input, code, message in CASES:
        body = {"model": MODEL, "input": make_input(failing_media), "parameters": {}}
        submitted.append((name, server.submit(body), code, message))
    for name, task_id, code, message in submitted:
        out = server.wait(task_id)["output"]
        assert out["task_status"] == "FAILED", (name, out)
        assert out["code"] == code, (name, out)
        if message:
            assert out["message"] == message, (name, out)
        assert out["message"], name
    not_found = server.wait(submitted[1][1])["output"]["message"]
    assert not_found == (
        "Invalid URL provided in your request. input.ref_images_url "
        f"({failing_media.url('/nothing.png')}): the server answered HTTP 404."
    )
    mismatch = server.wait(submitted[-1][1])["output"]["message"]
    assert mismatch.startswith("The size is not match")
    # the worker stored the fields by InputField mention; the API shows their wire names
    assert "input.mask_image_url is " in mismatch and " but input.video_url is " in mismatch
    assert "\x1e" not in mismatch and "\x1f" not in mismatch
    # and the server still does real work afterwards
    ok = {
        "model": MODEL,
        "input": {
            "function": "video_outpainting",
            "prompt": "p",
            "video_url": failing_media.url("/clip.mp4"),
        },
        "parameters": {"left_scale": 1.5},
    }
    assert server.wait(server.submit(ok))["output"]["task_status"] == "SUCCEEDED"
