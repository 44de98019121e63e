"""Liveness never depends on the database; readiness and the query of a waiting task say why
nothing runs (the load error from the worker registry)."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import create_engine

from tests.api.conftest import auth
from vace_server.api.context import AppContext
from vace_server.api.routes_health import _load_error
from vace_server.tasks.store import TaskStore

CREATE = "/api/v1/services/aigc/video-generation/video-synthesis"
BODY = {
    "model": "wanx2.1-vace-plus",
    "input": {"function": "image_reference", "prompt": "p", "ref_images_url": ["http://a/b.png"]},
}
ERROR = "VACE_MODEL='/models/gone' is neither 'auto', 'tiny', an existing folder nor ..."


def _unreachable_database(context: AppContext) -> None:
    """Points the app at a PostgreSQL that refuses connections (nothing listens on port 1)."""
    engine = create_engine("postgresql+psycopg://vace@127.0.0.1:1/none")
    context.store = TaskStore(engine, retry_seconds=0.2)
    context.workers.engine = engine


def test_health_answers_from_process_state_while_the_database_is_down(
    client: TestClient, context: AppContext
) -> None:
    assert client.get("/ready").status_code == 503  # no worker yet, database up
    _unreachable_database(context)
    r = client.get("/health")
    assert r.status_code == 200 and r.json()["status"] == "ok"
    r = client.get("/ready")
    assert r.status_code == 503 and r.headers["retry-after"] == "5"
    assert r.json()["code"] == "ServiceUnavailable"
    assert r.json()["message"] == "The database is unavailable."


def test_a_waiting_task_and_ready_say_why_no_worker_runs(
    client: TestClient, context: AppContext
) -> None:
    task_id = client.post(CREATE, json=BODY, headers=auth()).json()["output"]["task_id"]
    progress = client.get(f"/api/v1/tasks/{task_id}", headers=auth()).json()["output"]["progress"]
    assert progress == {"stage": "queued", "queue_position": 1}  # no hint: nothing failed
    context.workers.record_failure("/models/gone", ERROR)
    out = client.get(f"/api/v1/tasks/{task_id}", headers=auth()).json()["output"]
    assert out["task_status"] == "PENDING"
    assert out["progress"]["message"] == f"no worker can run this model: {ERROR}"
    r = client.get("/ready")
    assert r.status_code == 503
    assert r.json()["message"] == f"No worker is ready: no worker can run this model: {ERROR}"
    # a failure record is not a worker
    assert context.workers.alive(60_000) == []
    # once a worker is ready somewhere, the task just waits its turn
    context.workers.beat("w1", {"model": "tiny"})
    progress = client.get(f"/api/v1/tasks/{task_id}", headers=auth()).json()["output"]["progress"]
    assert "message" not in progress
    assert client.get("/ready").status_code == 200
    # a host that loads the model after all withdraws its record
    context.workers.clear_failure("/models/gone")
    assert context.workers.failures() == []


def test_health_is_degraded_only_while_no_worker_of_this_process_is_ready() -> None:
    down = {"ready": False, "alive": False, "error": ERROR}
    loading = {"ready": False, "alive": True, "error": None}
    ready = {"ready": True, "alive": True, "error": None}
    assert _load_error([]) is None
    assert _load_error([down]) == ERROR
    assert _load_error([down, loading]) == ERROR
    assert _load_error([down, ready]) is None
    assert _load_error([loading]) is None
