"""`serve` with a served-model registry: one embedded worker per model, each claiming only
its model's tasks (the two-transformer tiny-a14b beside the one-transformer tiny), /health
and /ready per model, unserved names refused."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest

from tests.support.live_server import LiveServer
from tests.support.media_server import MediaServer
from tests.support.task_db import TaskDb

REGISTRY = {
    "wan2.2-vace-fun-a14b": {"model": "tiny-a14b", "workers": 1},
    "wan2.1-vace-1.3b": {"model": "tiny", "aliases": ["small"], "workers": 1},
}


def _body(model: str, url: str) -> dict[str, object]:
    inp = {"function": "image_reference", "prompt": "a ball", "ref_images_url": [url]}
    return {"model": model, "input": inp}


@pytest.mark.slow  # two worker processes load their models
def test_each_model_has_its_worker(
    live_server: Callable[..., LiveServer], media: MediaServer
) -> None:
    server = live_server(VACE_MODELS=json.dumps(REGISTRY), VACE_NUM_INFERENCE_STEPS="2")
    health = server.health()
    assert {m: (v["workers"], v["ready"]) for m, v in health["models"].items()} == {
        "wan2.2-vace-fun-a14b": (1, 1),
        "wan2.1-vace-1.3b": (1, 1),
    }
    ready = httpx.get(f"{server.base_url}/ready", timeout=10)
    assert ready.status_code == 200
    assert ready.json()["models"] == {"wan2.1-vace-1.3b": 1, "wan2.2-vace-fun-a14b": 1}

    url = media.url("/subject.png")
    ids = {name: server.submit(_body(name, url)) for name in ("wan2.2-vace-fun-a14b", "small")}
    for task_id in ids.values():
        assert server.wait(task_id)["output"]["task_status"] == "SUCCEEDED"

    db = TaskDb(f"sqlite:///{(server.data_dir / 'vace.db').resolve()}")
    try:
        served_by = {w: info.get("served_model") for w, info in db.workers().items()}
        with db.engine.connect() as conn:
            rows = conn.exec_driver_sql("SELECT id, effective FROM tasks").all()
    finally:
        db.close()
    ran = {task_id: json.loads(effective)["model"] for task_id, effective in rows}
    assert ran[ids["wan2.2-vace-fun-a14b"]] == "tiny-a14b"  # the two-transformer worker
    assert ran[ids["small"]] == "tiny"
    assert sorted(v for v in served_by.values() if v) == sorted(REGISTRY)

    r = httpx.post(
        f"{server.api}/services/aigc/video-generation/video-synthesis",
        json=_body("wanx2.1-vace-plus", url),  # not served by this deployment
        headers=server.headers(),
        timeout=10,
    )
    assert r.status_code == 400 and r.json()["message"] == "Model not exist."
