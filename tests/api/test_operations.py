"""/ready and /metrics."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.api.conftest import auth
from vace_server.api.context import AppContext

CREATE = "/api/v1/services/aigc/video-generation/video-synthesis"
BODY = {
    "model": "wanx2.1-vace-plus",
    "input": {"function": "image_reference", "prompt": "p", "ref_images_url": ["http://a/b.png"]},
}


def test_ready_needs_a_live_worker(client: TestClient, context: AppContext) -> None:
    r = client.get("/ready")
    assert r.status_code == 503 and r.json()["code"] == "ServiceUnavailable"
    context.workers.beat("w1", {"model": "tiny"})
    r = client.get("/ready")
    assert r.status_code == 200 and r.json() == {"status": "ready", "workers": 1}


def _metric(text: str, name: str) -> float:
    """Value of the sample whose name-and-labels part is exactly `name`."""
    for line in text.splitlines():
        sample, _, value = line.rpartition(" ")
        if sample == name:
            return float(value)
    raise AssertionError(f"{name} not in metrics:\n{text}")


def test_metrics_queue_durations_and_failures(client: TestClient, context: AppContext) -> None:
    for _ in range(3):
        assert client.post(CREATE, json=BODY, headers=auth()).status_code == 200
    text = client.get("/metrics").text
    assert _metric(text, 'vace_tasks{status="PENDING"}') == 3
    assert _metric(text, "vace_workers_alive") == 0
    store = context.store
    ok = store.claim("w")
    bad = store.claim("w")
    assert ok is not None and bad is not None
    store.succeed(
        ok,
        output_key="k",
        output_seconds=5,
        actual_prompt=None,
        effective={"mean_step_seconds": 0.2},
    )
    store.fail(bad, code="InvalidURL", message="m")
    text = client.get("/metrics").text
    assert _metric(text, 'vace_tasks{status="PENDING"}') == 1
    assert (
        _metric(text, 'vace_task_failures_total{code="InvalidURL",function="image_reference"}') == 1
    )
    assert (
        _metric(
            text,
            'vace_task_duration_seconds_count{function="image_reference",status="SUCCEEDED"}',
        )
        == 1
    )
    assert _metric(text, 'vace_denoising_step_seconds_count{function="image_reference"}') == 1
    again = client.get("/metrics").text  # each finished task is observed once
    assert (
        _metric(again, 'vace_task_failures_total{code="InvalidURL",function="image_reference"}')
        == 1
    )


def test_stage_timings_are_histograms_per_function_model_and_stage_and_in_usage(
    client: TestClient, context: AppContext
) -> None:
    for _ in range(2):
        assert client.post(CREATE, json=BODY, headers=auth()).status_code == 200
    store = context.store
    timed, untimed = store.claim("w"), store.claim("w")
    assert timed is not None and untimed is not None
    stage_ms = {"fetch": 12.5, "denoise": 3000.0, "store": 4.0}
    for claim, effective in ((timed, {"stage_ms": stage_ms}), (untimed, {})):
        store.succeed(
            claim, output_key="k", output_seconds=5, actual_prompt=None, effective=effective
        )
    text = client.get("/metrics").text
    labels = 'function="image_reference",model="wanx2.1-vace-plus"'
    assert _metric(text, f'vace_stage_seconds_count{{{labels},stage="denoise"}}') == 1
    assert _metric(text, f'vace_stage_seconds_sum{{{labels},stage="denoise"}}') == 3.0
    assert _metric(text, f'vace_stage_seconds_sum{{{labels},stage="fetch"}}') == 0.0125
    assert 'stage="vae_decode"' not in text  # only the stages that ran
    usage = client.get(f"/api/v1/tasks/{timed.task.id}", headers=auth()).json()["usage"]
    assert usage["stage_ms"] == stage_ms
    usage = client.get(f"/api/v1/tasks/{untimed.task.id}", headers=auth()).json()["usage"]
    assert "stage_ms" not in usage  # a task stored before stage timings existed


def test_http_responses_are_counted_by_status_code(client: TestClient) -> None:
    assert client.get("/health").status_code == 200
    assert client.post(CREATE, json=BODY).status_code == 401  # no key: the error path
    assert client.get("/no/such/path").status_code == 404
    text = client.get("/metrics").text  # this scrape's own 200 is counted after it renders
    assert _metric(text, 'vace_http_responses_total{code="200"}') == 1
    assert _metric(text, 'vace_http_responses_total{code="401"}') == 1
    assert _metric(text, 'vace_http_responses_total{code="404"}') == 1
    again = client.get("/metrics").text
    assert _metric(again, 'vace_http_responses_total{code="200"}') == 2
