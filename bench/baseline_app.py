"""The baselines of the API floor: minimal FastAPI endpoints served exactly as `vace-server
serve` serves its app (uvicorn, the same protocol class and logging), so that side by side with
the same load generator the difference is our request path alone.

    python -m bench.baseline_app --port 8000 --body answer.json --db baseline.db

`GET /api/v1/tasks/{id}` returns `--body` (a real query answer of ours, so the bodies are the
same size); `POST /api/v1/services/aigc/video-generation/video-synthesis` parses the JSON body
and inserts one row into a SQLite file set up as ours is (WAL, the same pragmas)."""

from __future__ import annotations

import argparse
import json
import time
import uuid
from pathlib import Path
from typing import Any

from fastapi import Body, FastAPI
from sqlalchemy import BigInteger, Column, MetaData, String, Table, Text, insert

from vace_server.tasks import db

metadata = MetaData()
rows = Table(
    "rows",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("body", Text, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
)


def build_app(answer: dict[str, Any], db_path: Path) -> FastAPI:
    engine = db.make_engine(f"sqlite:///{db_path}")
    metadata.create_all(engine)
    app = FastAPI()

    @app.get("/api/v1/tasks/{task_id}")
    def query(task_id: str) -> dict[str, Any]:
        return answer

    @app.post("/api/v1/services/aigc/video-generation/video-synthesis")
    def create(payload: dict[str, Any] = Body(...)) -> dict[str, Any]:
        task_id = str(uuid.uuid4())
        with engine.begin() as conn:
            values = {"id": task_id, "body": json.dumps(payload), "created_ms": time.time_ns()}
            conn.execute(insert(rows).values(**values))
        return {
            "request_id": str(uuid.uuid4()),
            "output": {"task_id": task_id, "task_status": "PENDING"},
        }

    return app


def main() -> None:
    import uvicorn

    from vace_server.api.http_protocol import uvicorn_options
    from vace_server.logging_setup import configure_logging

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--body", type=Path, required=True, help="the GET answer (JSON)")
    parser.add_argument("--db", type=Path, required=True)
    args = parser.parse_args()
    configure_logging("INFO", "json")  # what `serve` does by default: access lines included
    app = build_app(json.loads(args.body.read_text()), args.db)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="info", **uvicorn_options())


if __name__ == "__main__":
    main()
