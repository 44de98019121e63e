"""/playground/annotators.json: the live workers' controls, as the form marks them."""

from __future__ import annotations

from fastapi.testclient import TestClient

from vace_server.api.context import AppContext
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
