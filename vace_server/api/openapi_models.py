"""Response bodies as the OpenAPI document describes them (docs/contract.md §7, §8.1, §10, §13).

Documentation only: no route validates or serialises through these models (the bodies are
built as plain dicts in responses.py, routes_*.py), so they change nothing on the wire. Every
model allows extra keys: the server may add fields (§13), and clients ignore unknown ones.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import models_json_schema

from vace_server.tasks.status import TaskStatus

_OPEN = ConfigDict(extra="allow")
_STATUS = Field(description="PENDING, RUNNING, SUCCEEDED, FAILED, CANCELED or UNKNOWN")


class ErrorBody(BaseModel):
    """Every synchronous error (§8.1): clients match on the literal `code` and the start of
    `message`."""

    model_config = _OPEN
    code: str = Field(examples=["InvalidParameter"])
    message: str = Field(examples=["Field required: input.prompt"])
    request_id: str


class CreateOutput(BaseModel):
    model_config = _OPEN
    task_id: str
    task_status: TaskStatus = _STATUS


class CreateResponse(BaseModel):
    """§7.1: the task is stored before this answer."""

    model_config = _OPEN
    output: CreateOutput
    request_id: str


class Progress(BaseModel):
    """This server's extension (§13): `queued` with `queue_position`, or a running stage."""

    model_config = _OPEN
    stage: str
    queue_position: int | None = None
    message: str | None = None
    percent: float | None = None
    step: int | None = None
    total_steps: int | None = None
    step_seconds: float | None = None
    eta_seconds: float | None = None


class TaskOutput(BaseModel):
    """§7.2: which fields are present depends on `task_status`."""

    model_config = _OPEN
    task_id: str
    task_status: TaskStatus = _STATUS
    submit_time: str | None = Field(None, description="YYYY-MM-DD HH:MM:SS.mmm")
    scheduled_time: str | None = None
    end_time: str | None = None
    video_url: str | None = Field(None, description="SUCCEEDED: the signed result link")
    orig_prompt: str | None = None
    actual_prompt: str | None = None
    code: str | None = Field(None, description="FAILED: §8.2")
    message: str | None = None
    progress: Progress | None = None


class Usage(BaseModel):
    model_config = _OPEN
    video_duration: int
    video_ratio: str
    video_count: int
    preset: str | None = None
    steps: int | None = None
    guidance_scale: float | None = None
    seed: int | None = None
    stage_ms: dict[str, float] | None = None


class QueryResponse(BaseModel):
    """Always HTTP 200; an unknown, expired or foreign id is `UNKNOWN`, never a 404."""

    model_config = _OPEN
    request_id: str
    output: TaskOutput
    usage: Usage | None = None


class ListEntry(BaseModel):
    """Upstream's list entry: epoch-millisecond times."""

    model_config = _OPEN
    task_id: str
    status: TaskStatus = _STATUS
    model_name: str
    gmt_create: int
    start_time: int | None = None
    end_time: int | None = None
    request_id: str
    api_key_id: str
    caller_uid: str
    caller_parent_id: str
    region: str
    user_api_unique_key: str


class ListResponse(BaseModel):
    """§7.3: `data` for the 1.x SDK and the docs, `tasks` (query `output`s) for the 2.0 SDK."""

    model_config = _OPEN
    request_id: str
    total: int
    total_page: int
    page_no: int
    page_size: int
    data: list[ListEntry]
    tasks: list[TaskOutput]


class CancelResponse(BaseModel):
    model_config = _OPEN
    request_id: str


class PolicyData(BaseModel):
    """§10: what the SDK's upload reads."""

    model_config = _OPEN
    policy: str
    signature: str
    upload_dir: str
    upload_host: str
    expire_in_seconds: int
    max_file_size_mb: int
    capacity_limit_mb: int
    oss_access_key_id: str
    x_oss_object_acl: str
    x_oss_forbid_overwrite: str


class PolicyResponse(BaseModel):
    model_config = _OPEN
    request_id: str
    data: PolicyData


class Health(BaseModel):
    """Liveness: this process's own state; `degraded` with `error` while its workers cannot
    load their model."""

    model_config = _OPEN
    status: str = Field(examples=["ok", "degraded"])
    version: str
    model: str | list[str]
    warnings: list[str]
    annotators: Any = None
    workers: list[dict[str, Any]]
    error: str | None = None
    models: dict[str, Any] | None = None


class Ready(BaseModel):
    model_config = _OPEN
    status: str = Field(examples=["ready"])
    workers: int
    models: dict[str, int] | None = None


MODELS: tuple[type[BaseModel], ...] = (
    ErrorBody,
    CreateResponse,
    QueryResponse,
    ListResponse,
    CancelResponse,
    PolicyResponse,
    Health,
    Ready,
)


def model_components() -> dict[str, Any]:
    """components/schemas entries for MODELS and the models they use."""
    _, top = models_json_schema(
        [(model, "validation") for model in MODELS],
        ref_template="#/components/schemas/{model}",
    )
    schemas: dict[str, Any] = top.get("$defs", {})
    return schemas
