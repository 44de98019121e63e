"""The task table (SQLAlchemy Core) and the immutable record read from it.

Times are epoch milliseconds in BIGINT columns: portable across SQLite and PostgreSQL, exact,
and what the list endpoint sends anyway.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

from vace_server.tasks.spec import TaskSpec
from vace_server.tasks.status import TaskStatus

metadata = MetaData()

tasks = Table(
    "tasks",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("account", String(128), nullable=False),
    Column("api_key_id", String(64), nullable=False),
    Column("request_id", String(36), nullable=False),
    Column("model_name", String(64), nullable=False),
    Column("function", String(32), nullable=False),
    Column("status", String(16), nullable=False),
    Column("spec", Text, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Column("started_ms", BigInteger),
    Column("ended_ms", BigInteger),
    Column("expires_ms", BigInteger),
    Column("attempts", Integer, nullable=False, default=0),
    Column("max_attempts", Integer, nullable=False),
    Column("worker_id", String(96)),
    Column("lease_until_ms", BigInteger),
    Column("error_code", String(64)),
    Column("error_message", Text),
    Column("output_key", Text),
    Column("output_seconds", Float),
    Column("actual_prompt", Text),
    Column("effective", Text),
    Column("cancel_requested", Boolean, nullable=False, default=False),
    Column("progress", Text),
    Index("ix_tasks_status_created", "status", "created_ms"),
    Index("ix_tasks_account_created_expires", "account", "created_ms", "expires_ms"),
    Index("ix_tasks_expires", "expires_ms"),
)


# One row per (task, callback URL), written with the task and delivered once it has ended.
webhooks = Table(
    "webhooks",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("task_id", String(36), nullable=False),
    Column("url", Text, nullable=False),
    Column("state", String(16), nullable=False),  # pending | delivered | failed
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_ms", BigInteger, nullable=False),
    Column("last_error", Text),
    Column("delivered_ms", BigInteger),
    Index("ix_webhooks_task", "task_id"),
    Index("ix_webhooks_due", "state", "next_attempt_ms"),
)

# One row per temporary upload (the file behind an `oss://<key>` URL; its bytes live in
# storage/uploads.py), binding it to an account and a model until `expires_ms`.
uploads = Table(
    "uploads",
    metadata,
    Column("key", String(512), primary_key=True),
    Column("account", String(128), nullable=False),
    Column("model", String(64), nullable=False),
    Column("size_bytes", BigInteger, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Column("expires_ms", BigInteger, nullable=False),
    Index("ix_uploads_expires", "expires_ms"),
)


@dataclass(frozen=True)
class TaskRecord:
    """One row of `tasks`, as the rest of the code sees it."""

    id: str
    account: str
    api_key_id: str
    request_id: str
    model_name: str
    function: str
    status: TaskStatus
    spec: TaskSpec
    created_ms: int
    started_ms: int | None
    ended_ms: int | None
    expires_ms: int | None
    attempts: int
    max_attempts: int
    worker_id: str | None
    lease_until_ms: int | None
    error_code: str | None
    error_message: str | None
    output_key: str | None
    output_seconds: float | None
    actual_prompt: str | None
    effective: dict[str, Any] | None
    cancel_requested: bool
    progress: dict[str, Any] | None

    @classmethod
    def inserted(cls, values: dict[str, Any], spec: TaskSpec) -> TaskRecord:
        """The record of a row just inserted with `values` (columns left out are NULL)."""
        m = {column.name: None for column in tasks.columns} | values
        return cls._from_mapping(m, spec)

    @classmethod
    def from_row(cls, row: Any) -> TaskRecord:
        m = row._mapping
        return cls._from_mapping(m, TaskSpec.from_json(m["spec"]))

    @classmethod
    def _from_mapping(cls, m: Any, spec: TaskSpec) -> TaskRecord:
        return cls(
            id=m["id"],
            account=m["account"],
            api_key_id=m["api_key_id"],
            request_id=m["request_id"],
            model_name=m["model_name"],
            function=m["function"],
            status=TaskStatus(m["status"]),
            spec=spec,
            created_ms=m["created_ms"],
            started_ms=m["started_ms"],
            ended_ms=m["ended_ms"],
            expires_ms=m["expires_ms"],
            attempts=m["attempts"],
            max_attempts=m["max_attempts"],
            worker_id=m["worker_id"],
            lease_until_ms=m["lease_until_ms"],
            error_code=m["error_code"],
            error_message=m["error_message"],
            output_key=m["output_key"],
            output_seconds=m["output_seconds"],
            actual_prompt=m["actual_prompt"],
            effective=json.loads(m["effective"]) if m["effective"] else None,
            cancel_requested=bool(m["cancel_requested"]),
            progress=json.loads(m["progress"]) if m["progress"] else None,
        )
