"""/playground/annotators.json (the live workers' controls, as the form marks them) and
/playground/watermark.png (the mark, as the worker draws it)."""

from __future__ import annotations

import io

import numpy as np
from fastapi.testclient import TestClient
from PIL import Image

from vace_server.api.context import AppContext
from vace_server.api.routes_playground import PREVIEW_FRAME_HEIGHT
from vace_server.media.watermark import CJK_TEXT, choose_font, render_mark
from vace_server.worker.runtime import available_controls


def test_no_worker_no_knowledge(client: TestClient) -> None:
    answer = client.get("/playground/annotators.json")
    assert answer.status_code == 200
    assert answer.json() == {"workers": 0, "missing": {}}
    assert answer.headers["cache-control"] == "no-cache"


def test_the_registrys_workers_say_which_controls_they_lack(
    client: TestClient, context: AppContext
) -> None:
    full = {
        "posebodyface": {"available": "true", "name": "dwpose"},
        "posebody": {"available": "true", "name": "dwpose"},
        "depth": {"available": "true", "name": "depth-anything"},
        "scribble": {"available": "true", "name": "canny"},
    }
    bare = {
        **full,
        "depth": {"available": "false", "reason": "no depth checkpoint: put … in /srv/ann/depth"},
        "posebody": {"available": "false", "reason": "no pose checkpoint"},
    }
    context.workers.beat("w-full", {"model": "tiny", "controls": available_controls(full)})
    context.workers.beat("w-bare", {"model": "tiny", "controls": available_controls(bare)})
    answer = client.get("/playground/annotators.json")
    assert answer.json() == {"workers": 2, "missing": {"posebody": 1, "depth": 1}}
    assert "/srv" not in answer.text  # names and counts, never the worker's folders


def test_the_watermark_preview_is_the_workers_mark(client: TestClient) -> None:
    answer = client.get("/playground/watermark.png")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "image/png"
    image = Image.open(io.BytesIO(answer.content))
    assert image.mode == "RGBA"
    rgb, alpha = render_mark(PREVIEW_FRAME_HEIGHT, None)
    pixels = np.asarray(image)
    assert np.array_equal(pixels[..., :3], rgb)
    assert np.array_equal(pixels[..., 3], np.rint(alpha * 255).astype(np.uint8))
    assert choose_font(32, None)[0] == CJK_TEXT  # the bundled font: "AI生成", not the fallback
