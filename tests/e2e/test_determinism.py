"""Same seed and inputs → the same video, end to end through the server."""

from __future__ import annotations

from collections.abc import Callable

import av
import httpx
import numpy as np

from tests.support.live_server import LiveServer
from tests.support.media_server import MediaServer


def _frames(url: str) -> np.ndarray:
    data = httpx.get(url, timeout=30).content
    import io

    with av.open(io.BytesIO(data), mode="r") as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


def test_same_seed_same_video(live_server: Callable[..., LiveServer], media: MediaServer) -> None:
    server = live_server()

    def run(seed: int) -> np.ndarray:
        body = {
            "model": "wanx2.1-vace-plus",
            "input": {
                "function": "image_reference",
                "prompt": "a cat",
                "ref_images_url": [media.url("/subject.png")],
            },
            "parameters": {"seed": seed, "size": "720*1280"},
        }
        done = server.wait(server.submit(body))
        assert done["output"]["task_status"] == "SUCCEEDED", done
        return _frames(done["output"]["video_url"])

    first, second, other = run(123), run(123), run(124)
    assert first.shape == (30, 1280, 720, 3)
    assert np.array_equal(first, second)
    assert not np.array_equal(first, other)
