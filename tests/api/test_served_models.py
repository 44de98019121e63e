"""The API with a served-model registry (VACE_MODELS): create and getPolicy accept exactly
the served names (aliases too) and refuse the rest with `Model not exist.`; each task
records its model's engine settings; /health, /ready and /metrics report per model."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import KEY_A, auth
from vace_server.api.app import create_app
from vace_server.api.context import AppContext
from vace_server.settings import Settings

CREATE = "/api/v1/services/aigc/video-generation/video-synthesis"
REGISTRY = {
    "big": {"model": "tiny-a14b", "aliases": ["big-alias"], "settings": {"guidance_scale": 4}},
    "small": {"model": "tiny", "settings": {"VACE_NUM_INFERENCE_STEPS": 3}},
}
UNSERVED = "wanx2.1-vace-plus"  # today's default name: not served by this registry


def _body(model: str) -> dict[str, object]:
    inp = {"function": "image_reference", "prompt": "p", "ref_images_url": ["http://a/b.png"]}
    return {"model": model, "input": inp}


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[TestClient, AppContext]]:
    settings = Settings(
        data_dir=tmp_path / "data",
        api_keys=KEY_A,
        workers=0,  # the entries' default: no embedded worker starts in these tests
        public_base_url="http://testserver",
        guidance_scale=2.0,
        models=json.dumps(REGISTRY),
    )
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield client, client.app.state.ctx  # type: ignore[attr-defined]


def _create(client: TestClient, model: str) -> str:
    r = client.post(CREATE, json=_body(model), headers=auth())
    assert r.status_code == 200, r.text
    task_id: str = r.json()["output"]["task_id"]
    return task_id


def test_create_takes_served_names_and_records_their_settings(
    served: tuple[TestClient, AppContext],
) -> None:
    client, context = served
    tasks = {name: _create(client, name) for name in ("big", "big-alias", "small")}
    for name, task_id in tasks.items():
        task = context.store.get(task_id)
        assert task is not None and task.spec.engine is not None
        assert task.model_name == name  # as the client named it
        assert task.spec.upload_model == ("small" if name == "small" else "big")
    big = context.store.get(tasks["big-alias"])
    small = context.store.get(tasks["small"])
    assert big is not None and small is not None and big.spec.engine and small.spec.engine
    assert (big.spec.engine.guidance_scale, big.spec.engine.num_inference_steps) == (4, None)
    assert (small.spec.engine.guidance_scale, small.spec.engine.num_inference_steps) == (2, 3)
    # a waiting task's place is in its own model's queue
    out = client.get(f"/api/v1/tasks/{tasks['small']}", headers=auth()).json()["output"]
    assert out["progress"]["queue_position"] == 1


@pytest.mark.parametrize("model", [UNSERVED, "wan2.1-vace-plus", "Big", "other"])
def test_unserved_names_are_model_not_exist(
    served: tuple[TestClient, AppContext], model: str
) -> None:
    client, _context = served
    r = client.post(CREATE, json=_body(model), headers=auth())
    assert r.status_code == 400
    assert (r.json()["code"], r.json()["message"]) == ("InvalidParameter", "Model not exist.")
    policy = client.get(
        "/api/v1/uploads", params={"action": "getPolicy", "model": model}, headers=auth()
    )
    assert policy.status_code == 400 and policy.json()["message"] == "Model not exist."


def test_get_policy_serves_aliases(served: tuple[TestClient, AppContext]) -> None:
    client, _context = served
    for model in ("big", "big-alias", "small"):
        params = {"action": "getPolicy", "model": model}
        assert client.get("/api/v1/uploads", params=params, headers=auth()).status_code == 200


def test_ready_is_per_model(served: tuple[TestClient, AppContext]) -> None:
    client, context = served
    r = client.get("/ready")
    assert r.status_code == 503
    assert r.json()["message"] == (
        "No worker is ready for big: no worker is alive; small: no worker is alive"
    )
    context.workers.record_failure("tiny", "cannot load it", served_model="small")
    context.workers.beat("w-big", {"model": "tiny-a14b", "served_model": "big"})
    r = client.get("/ready")
    assert r.status_code == 503 and r.json()["message"] == (
        "No worker is ready for small: cannot load it"
    )
    assert client.get("/ready", params={"model": "big-alias"}).json() == {
        "status": "ready",
        "workers": 1,
        "models": {"big": 1},
    }
    assert client.get("/ready", params={"model": "small"}).status_code == 503
    assert client.get("/ready", params={"model": UNSERVED}).status_code == 400
    context.workers.beat("w-small", {"model": "tiny", "served_model": "small"})
    r = client.get("/ready")
    assert r.status_code == 200
    assert r.json() == {"status": "ready", "workers": 2, "models": {"big": 1, "small": 1}}


def test_health_and_metrics_are_per_model(served: tuple[TestClient, AppContext]) -> None:
    client, context = served
    _create(client, "big")
    _create(client, "big-alias")
    _create(client, "small")
    context.workers.beat("w-big", {"model": "tiny-a14b", "served_model": "big"})
    health = client.get("/health").json()
    assert health["models"] == {
        "big": {"names": ["big", "big-alias"], "workers": 0, "ready": 0, "error": None},
        "small": {"names": ["small"], "workers": 0, "ready": 0, "error": None},
    }
    text = client.get("/metrics").text
    assert 'vace_model_tasks{model="big",status="PENDING"} 2.0' in text  # aliases summed
    assert 'vace_model_tasks{model="small",status="PENDING"} 1.0' in text
    assert 'vace_model_workers_alive{model="big"} 1.0' in text
    assert 'vace_model_workers_alive{model="small"} 0.0' in text


def test_without_a_registry_nothing_per_model_is_added(client: TestClient) -> None:
    assert "models" not in client.get("/health").json()
    assert "vace_model_tasks" not in client.get("/metrics").text
