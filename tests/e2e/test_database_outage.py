"""A real PostgreSQL outage under a live `serve`: requests are answered 503 with
`Retry-After` over the same kept-alive connection, each logged once as one JSON line with its
request id; a create answered 503 made no task; service resumes when the database is back."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import httpx
from sqlalchemy import func, select

from tests.support.live_server import LiveServer
from tests.support.postgres import PostgresCluster
from tests.support.raw_http import CREATE_PATH
from vace_server.tasks import db
from vace_server.tasks.models import tasks

BODY = {
    "model": "wanx2.1-vace-plus",
    "input": {
        "function": "image_reference",
        "prompt": "a ball",
        "ref_images_url": ["http://127.0.0.1:9/ball.png"],
    },
}


def client_port(r: httpx.Response) -> Any:
    return r.extensions["network_stream"].get_extra_info("client_addr")


# What `serve` prints for a person on stdout, which the live server's file holds beside the
# log (stderr): the start-up summary ("vace-server 0.1.0", "  API:        http://…") and the
# worker lines ("vace-server: worker … ready"). A traceback ("  File \"…\"") is no such line.
CONSOLE_LINE = re.compile(r"^(vace-server\b|  [A-Z][A-Za-z ]*:)")


def log_lines(server: LiveServer) -> list[dict[str, Any]]:
    """Every line of the server's log, each of which must be one JSON object."""
    text = server.log_path.read_text(errors="replace")
    lines = [line for line in text.splitlines() if line.strip()]
    return [json.loads(line) for line in lines if not CONSOLE_LINE.match(line)]


def test_a_postgres_outage_is_503_with_retry_after_logged_once_as_json(
    live_server: Callable[..., LiveServer], postgres: PostgresCluster
) -> None:
    url = postgres.migrated_database()
    server = live_server(
        VACE_WORKERS="0", VACE_DATABASE_URL=url, VACE_API_DATABASE_RETRY_SECONDS="1"
    )
    with httpx.Client(base_url=server.api, headers=server.headers(), timeout=60) as c:
        created = c.post(CREATE_PATH.removeprefix("/api/v1"), json=BODY)
        assert created.status_code == 200, created.text
        task_id = created.json()["output"]["task_id"]
        ports = {client_port(created)}
        postgres.stop("fast")
        try:
            down = [
                c.get(f"/tasks/{task_id}"),
                c.post(CREATE_PATH.removeprefix("/api/v1"), json=BODY),
            ]
            ports |= {client_port(r) for r in down}
        finally:
            postgres.start()
        back = c.get(f"/tasks/{task_id}")
        ports.add(client_port(back))
    assert back.status_code == 200 and back.json()["output"]["task_status"] == "PENDING"
    assert len(ports) == 1  # the 503s did not cost the kept-alive connection
    lines = log_lines(server)
    for r in down:
        assert r.status_code == 503, r.text
        assert r.headers["retry-after"] == "5"
        body = r.json()
        assert set(body) == {"code", "message", "request_id"}
        assert body["code"] == "ServiceUnavailable"
        mine = [x for x in lines if x.get("request_id") == body["request_id"]]
        errors = [x for x in mine if x["level"] == "ERROR"]
        assert len(errors) == 1 and "exception" not in errors[0], mine
        assert "(answered 503)" in errors[0]["message"]
    engine = db.make_engine(url)
    try:
        with engine.connect() as conn:
            count = conn.execute(select(func.count()).select_from(tasks)).scalar_one()
    finally:
        engine.dispose()
    assert count == 1  # the create answered 503 made no task (a client may retry it)
    postgres.drop_database(url)
